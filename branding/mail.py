"""Mail that sealmail writes itself, built structurally with :mod:`email.message`."""

from __future__ import annotations

import dataclasses
import email.policy
import email.utils
from email.message import EmailMessage

from sqlalchemy.ext.asyncio import AsyncSession

from core import outbox
from core.storage.vault import Vault

_FORBIDDEN_IN_HEADERS = ("\r", "\n", "\x00")
_ADDRESS_HEADERS = frozenset({"from", "to", "cc", "reply-to", "sender"})
# The email package decodes anything that looks like an RFC 2047 word in a value it is
# given, even where our own reader kept it as literal text (a subject such as
# "=?utf-8?Q?=00=80 ?="): its bytes could then be anything, NULs included. A zero-width
# space after "=" keeps such text literal, and the reader sees the same characters.
_WORD_START = "=?"
_WORD_START_KEPT = "=\u200b?"


@dataclasses.dataclass(frozen=True)
class Rendered:
    """A rendered email: its subject and both bodies."""

    subject: str
    text: str
    html: str


def _domain(address: str) -> str:
    # not core.addresses.domain_of: a From with a display name, case kept, for a Message-ID
    domain = email.utils.parseaddr(address)[1].rpartition("@")[2].strip().rstrip(".")
    return domain or "localhost"


def _check_header(name: str, value: str) -> None:
    for bad in _FORBIDDEN_IN_HEADERS:
        if bad in name or bad in value:
            raise ValueError(f"header {name!r} contains a line break or NUL")


def compose(
    *,
    from_addr: str,
    to_addr: str,
    rendered: Rendered,
    reply_to: str | None = None,
    headers: dict[str, str] | None = None,
    inline_images: list[tuple[str, bytes]] | None = None,
) -> bytes:
    """A complete RFC 5322 message: multipart/alternative (text, then HTML), UTF-8 safe.

    ``inline_images`` are ``(content id, PNG)`` pairs the HTML shows as ``cid:``.
    Non-ASCII addresses switch to the SMTPUTF8 policy; everything else is 7-bit clean
    (RFC 2047 subjects, quoted-printable or base64 bodies). Line breaks in any header value
    raise :class:`ValueError` rather than letting a value inject headers.
    """
    addresses = [from_addr, to_addr, reply_to or ""]
    policy = email.policy.SMTP
    if any(not a.isascii() for a in addresses):
        policy = email.policy.SMTPUTF8
    msg = EmailMessage(policy=policy)
    fields: dict[str, tuple[str, str]] = {}  # lower-case name -> (name, value)
    standard = [
        ("From", from_addr),
        ("To", to_addr),
        ("Subject", rendered.subject),
        ("Date", email.utils.formatdate(usegmt=True)),
        ("Message-ID", email.utils.make_msgid(domain=_domain(from_addr))),
    ]
    if reply_to:
        standard.append(("Reply-To", reply_to))
    for name, value in standard + list((headers or {}).items()):
        _check_header(name, value)
        fields[name.lower()] = (name, value)  # a caller's header replaces a standard one
    for name, value in fields.values():
        if name.lower() not in _ADDRESS_HEADERS:
            value = value.replace(_WORD_START, _WORD_START_KEPT)
        msg[name] = value
    # quoted-printable keeps the bodies 7-bit, so no relay needs 8BITMIME for our own mail
    msg.set_content(rendered.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(rendered.html, subtype="html", charset="utf-8", cte="quoted-printable")
    if inline_images:
        # the HTML part becomes multipart/related with each image by its Content-ID, so a
        # logo shows without loading anything from the internet
        html_part = msg.get_payload()[1]
        for cid, png in inline_images:
            html_part.add_related(png, maintype="image", subtype="png", cid=f"<{cid}>")
    return msg.as_bytes()


async def queue_rendered(
    session: AsyncSession,
    vault: Vault,
    *,
    tenant_id: str,
    mail_from: str,
    recipients: list[str],
    rendered: Rendered,
    kind: str,
    lifetime: float,
) -> None:
    """One automatic mail per recipient (``Auto-Submitted``), each sealed under
    ``tenant_id``'s keys and queued (:func:`core.outbox.post`); the caller commits."""
    for rcpt in recipients:
        raw = compose(
            from_addr=mail_from,
            to_addr=rcpt,
            rendered=rendered,
            headers={"Auto-Submitted": "auto-generated"},
        )
        await outbox.post(
            session,
            vault,
            kind=kind,
            tenant_id=tenant_id,
            mail_from=mail_from,
            recipients=[rcpt],
            raw=raw,
            lifetime=lifetime,
        )
