"""The handler table: which handlers run, in order, for each disposition (Mailman's
pipelines, as data). To add a handler, write it in :mod:`gateway.pipeline.handlers` and
name it here::

    clear   to_outbox
    tls     to_outbox_tls (only over verified TLS, else back to the pipeline for the portal)
    portal  seal_to_portal, guard_message (passphrase, step-up), grant_access, notify_recipient
    pdf     seal_to_portal, guard_message, grant_access, notify_pdf (an encrypted PDF attached)
    pgp     encrypt_pgp       (PGP/MIME, RFC 3156)
    smime   encrypt_smime     (application/pkcs7-mime)
    hold    quarantine        (a compliance officer releases or rejects)
    reject  reject_notice     (the sender is told which rule refused it)
    journal archive_journal   (an Exchange journal report: archived, never delivered)
"""

from __future__ import annotations

from gateway.pipeline.context import Handler
from gateway.pipeline.handlers.archive_journal import archive_journal
from gateway.pipeline.handlers.encrypt_pgp import encrypt_pgp
from gateway.pipeline.handlers.encrypt_smime import encrypt_smime
from gateway.pipeline.handlers.grant_access import grant_access
from gateway.pipeline.handlers.guard_message import guard_message
from gateway.pipeline.handlers.notify_pdf import notify_pdf
from gateway.pipeline.handlers.notify_recipient import notify_recipient
from gateway.pipeline.handlers.quarantine import quarantine
from gateway.pipeline.handlers.reject_notice import reject_notice
from gateway.pipeline.handlers.seal_to_portal import seal_to_portal
from gateway.pipeline.handlers.to_outbox import to_outbox, to_outbox_tls
from gateway.pipeline.journal import DISPOSITION_JOURNAL

HANDLERS: dict[str, Handler] = {
    "to_outbox": to_outbox,
    "to_outbox_tls": to_outbox_tls,
    "seal_to_portal": seal_to_portal,
    "guard_message": guard_message,
    "grant_access": grant_access,
    "notify_recipient": notify_recipient,
    "notify_pdf": notify_pdf,
    "encrypt_pgp": encrypt_pgp,
    "encrypt_smime": encrypt_smime,
    "quarantine": quarantine,
    "reject_notice": reject_notice,
    "archive_journal": archive_journal,
}
PIPELINES: dict[str, tuple[str, ...]] = {
    "clear": ("to_outbox",),
    "tls": ("to_outbox_tls",),
    "portal": ("seal_to_portal", "guard_message", "grant_access", "notify_recipient"),
    "pdf": ("seal_to_portal", "guard_message", "grant_access", "notify_pdf"),
    "pgp": ("encrypt_pgp",),
    "smime": ("encrypt_smime",),
    "hold": ("quarantine",),
    "reject": ("reject_notice",),
    DISPOSITION_JOURNAL: ("archive_journal",),
}
