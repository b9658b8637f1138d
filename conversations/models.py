"""The conversations' own tables: what happened to a sealed message, per recipient; how
strongly a tenant's people sign in; what opening one message needs; the password a
recipient chose for their encrypted PDFs."""

from __future__ import annotations

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.models import Base, now


class MessageEvent(Base):
    """One event of one message for one recipient (or for all: ``recipient`` = ""):
    ``notified``, ``opened``, ``downloaded``, ``replied``, ``forwarded``, ``revoked``,
    ``expiry_changed``, ``resent``, ``copy_requested``, ``receipt_sent``, ``pdf_sent``. Never
    content: ``detail`` holds ids, counts and times as JSON."""

    __tablename__ = "message_events"
    __table_args__ = (Index("ix_message_events_message", "message_id", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(32), index=True)
    message_id: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str] = mapped_column(String(320), default="")
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(320), default="")
    detail: Mapped[str] = mapped_column(Text, default="{}")
    at: Mapped[float] = mapped_column(Float, default=now)


class TenantProtection(Base):
    """How strongly a tenant's recipients and users prove who they are (issue 16), one row
    per tenant (none = the defaults below).

    ``step_up``: when opening a sealed message needs a passkey or the sender's passphrase on
    top of the sign-in: ``off``, ``detectors`` (a built-in detector named in
    ``step_up_detectors`` matched), ``rules`` (a policy rule named in ``step_up_rules``
    decided), ``always``. ``code_fallback``: someone who has a passkey may still sign in with
    an emailed code (a lost passkey); ``remember_days``: how long "remember this device"
    lasts (0 = not offered). ``pdf_when_no_key``: method ``auto`` sends an encrypted PDF
    rather than a portal notice when the recipient has no OpenPGP key or S/MIME certificate.
    """

    __tablename__ = "tenant_protection"
    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    step_up: Mapped[str] = mapped_column(String(12), default="off", server_default="off")
    step_up_detectors: Mapped[str] = mapped_column(String(300), default="", server_default="")
    step_up_rules: Mapped[str] = mapped_column(String(2000), default="", server_default="")
    code_fallback: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    remember_days: Mapped[int] = mapped_column(Integer, default=30, server_default="30")
    pdf_when_no_key: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    updated_at: Mapped[float] = mapped_column(Float, default=now)


class MessageGuard(Base):
    """What opening one sealed message needs beyond signing in (issue 16): a passkey or the
    passphrase (``step_up``, and why), and the sender-set passphrase (Argon2 hash; its hint
    in clear, written by the sender for the recipient). No row: nothing more. A row whose
    ``message_id`` starts with ``pp_`` is a passphrase registered before its message arrived
    (:mod:`conversations.guards`)."""

    __tablename__ = "message_guards"
    message_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(32), index=True)
    step_up: Mapped[bool] = mapped_column(Boolean, default=False)
    step_up_reason: Mapped[str] = mapped_column(String(300), default="")
    passphrase_hash: Mapped[str] = mapped_column(String(200), default="")
    passphrase_hint: Mapped[str] = mapped_column(String(200), default="")
    # the sender's address; while the passphrase waits for its message (the add-in, compose
    # and the API register it first, ``message_id`` is then its reference ``pp_...``)
    sender: Mapped[str] = mapped_column(String(320), default="")
    # the passphrase sealed (vault object) while a PDF still has to be encrypted with it;
    # removed once the message was processed
    passphrase_object_id: Mapped[str] = mapped_column(String(40), default="")
    created_at: Mapped[float] = mapped_column(Float, default=now)


class PdfPassword(Base):
    """The password a recipient chose in the portal for the encrypted PDFs of one tenant
    (issue 16, method ``pdf``), one row per tenant and address. The server must encrypt
    later PDFs with it, so it is kept as a sealed object under the tenant's keys
    (``object_id``, kind ``pdf-password``), never in clear and never as a mere hash."""

    __tablename__ = "pdf_passwords"
    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    address: Mapped[str] = mapped_column(String(320), primary_key=True)  # lower case
    object_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[float] = mapped_column(Float, default=now)
    updated_at: Mapped[float] = mapped_column(Float, default=now)
