"""The schema. Times are UTC epoch seconds (float) so that SQLite and PostgreSQL agree.

No column ever holds message content in clear: subjects, bodies, file names and
notifications live in sealed objects (:mod:`core.sealed`); rows hold ids, addresses
of the envelope, states and hashes.
"""

from __future__ import annotations

import datetime
import time

from sqlalchemy import (
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def now() -> float:
    return time.time()


class Base(DeclarativeBase):
    pass


# --- accounts -----------------------------------------------------------------------------


class Partner(Base):
    __tablename__ = "partners"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[float] = mapped_column(Float, default=now)


class Tenant(Base):
    __tablename__ = "tenants"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    partner_id: Mapped[str | None] = mapped_column(ForeignKey("partners.id"), nullable=True)
    plan: Mapped[str] = mapped_column(String(16), default="paid")  # trial | nfr | paid
    standing: Mapped[str] = mapped_column(String(16), default="active")
    # active | suspended | terminated
    logo_url: Mapped[str] = mapped_column(String(500), default="")
    brand_color: Mapped[str] = mapped_column(String(16), default="#1f4e79")
    hide_subject: Mapped[bool] = mapped_column(Boolean, default=False)
    sensitivity_trigger: Mapped[bool] = mapped_column(Boolean, default=False)
    notification_from: Mapped[str] = mapped_column(String(320), default="")
    # OpenPGP: move the real subject into the encrypted part (protected headers)
    pgp_protect_subject: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    wkd_lookup: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # next hop for this tenant's mail ("" = the global ``relay``): host:port or "mx"
    relay: Mapped[str] = mapped_column(String(300), default="", server_default="")
    # an address of the tenant's that receives Exchange journal reports ("" = none)
    journal_address: Mapped[str] = mapped_column(String(320), default="", server_default="")
    # retention in days (None = the settings' archive_retention / portal_retention)
    archive_retention_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    portal_retention_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[float] = mapped_column(Float, default=now)


class TenantDomain(Base):
    __tablename__ = "tenant_domains"
    domain: Mapped[str] = mapped_column(String(253), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)


class SmtpCredential(Base):
    __tablename__ = "smtp_credentials"
    username: Mapped[str] = mapped_column(String(200), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[float] = mapped_column(Float, default=now)


class ConnectorToken(Base):
    """A Microsoft 365 connector's token (it cannot AUTH); SHA-256 of a 256-bit secret."""

    __tablename__ = "connector_tokens"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[float] = mapped_column(Float, default=now)


class AllowedNetwork(Base):
    """A network a tenant's mail may come from. ``private`` = the address alone identifies it."""

    __tablename__ = "allowed_networks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    cidr: Mapped[str] = mapped_column(String(64))
    private: Mapped[bool] = mapped_column(Boolean, default=False)


class ApiKey(Base):
    __tablename__ = "api_keys"
    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16), default="admin")
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[float] = mapped_column(Float, default=now)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("tenant_id", "email"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16), default="sender")  # admin | sender
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[float] = mapped_column(Float, default=now)


class Recipient(Base):
    """An external address a tenant has sent sealed mail to."""

    __tablename__ = "recipients"
    __table_args__ = (UniqueConstraint("tenant_id", "email"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    first_seen: Mapped[float] = mapped_column(Float, default=now)


class AuditEvent(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str | None] = mapped_column(String(32), index=True, nullable=True)
    actor: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[str] = mapped_column(Text, default="{}")
    at: Mapped[float] = mapped_column(Float, default=now)


# --- keys and sealed objects ----------------------------------------------------------------


class TenantKey(Base):
    """A tenant's key-encryption key, wrapped by the root key."""

    __tablename__ = "tenant_keys"
    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    root_key_id: Mapped[str] = mapped_column(String(200), default="file")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[float] = mapped_column(Float, default=now)
    # set by ``sealmail key rotate`` once no data key is wrapped by this version any more
    # (key rotation, issue 5; migration 0007). The wrapped KEK is kept: a late writer that
    # still used it stays readable, and the next rotation moves it on.
    retired_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class SealedObject(Base):
    """One encrypted object in the archive; its data key, wrapped by the tenant's KEK, lives
    here so that destroying this row's key makes the ciphertext unreadable everywhere."""

    __tablename__ = "sealed_objects"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # raw | meta | part | outbound
    storage_name: Mapped[str] = mapped_column(String(200))
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    kek_version: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer, default=0)  # plaintext bytes
    sha256: Mapped[str] = mapped_column(String(64), default="")  # of the ciphertext
    created_at: Mapped[float] = mapped_column(Float, default=now)
    destroyed_at: Mapped[float | None] = mapped_column(Float, nullable=True)


# --- messages ------------------------------------------------------------------------------


class Message(Base):
    """A message accepted by the gateway. ``raw_object_id`` is the original, sealed."""

    __tablename__ = "messages"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # the queue id
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    mail_from: Mapped[str] = mapped_column(String(320))
    client_addr: Mapped[str] = mapped_column(String(64), default="")
    size: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16), default="received", index=True)
    # received | processed | failed
    disposition: Mapped[str] = mapped_column(String(16), default="")
    raw_object_id: Mapped[str] = mapped_column(String(40))
    meta_object_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(Float, default=0.0)
    # the worker processing it now (its claim runs until next_attempt_at); "" when none
    claimed_by: Mapped[str] = mapped_column(String(64), default="", server_default="")
    last_error: Mapped[str] = mapped_column(String(500), default="")
    received_at: Mapped[float] = mapped_column(Float, default=now)
    processed_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # when the sweep shredded the portal copy (portal retention over): "expired" page
    portal_expired_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class MessageRecipient(Base):
    __tablename__ = "message_recipients"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    rcpt: Mapped[str] = mapped_column(String(320))
    disposition: Mapped[str] = mapped_column(String(16), default="")
    reason: Mapped[str] = mapped_column(String(500), default="")
    # pending: the pipeline still has to act for this recipient; done: it has.
    state: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    # set by a later event for the next pipeline pass: "released" (a compliance officer let
    # a held message go: decide again, skipping hold rules) or "portal" (verified TLS was
    # required and the next hop could not give it: seal to the portal instead)
    override: Mapped[str] = mapped_column(String(16), default="", server_default="")


class PortalAccess(Base):
    """One recipient's right to read one sealed message; the link token is stored hashed."""

    __tablename__ = "portal_access"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"), index=True)
    tenant_id: Mapped[str] = mapped_column(String(32), index=True)
    recipient: Mapped[str] = mapped_column(String(320), index=True)
    created_at: Mapped[float] = mapped_column(Float, default=now)
    expires_at: Mapped[float] = mapped_column(Float)
    first_opened_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class OneTimeCode(Base):
    __tablename__ = "portal_codes"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    access_id: Mapped[str] = mapped_column(ForeignKey("portal_access.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float, default=now)
    expires_at: Mapped[float] = mapped_column(Float)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    used: Mapped[bool] = mapped_column(Boolean, default=False)


class PortalSession(Base):
    """Server-side session; the cookie carries a random id whose SHA-256 is stored here."""

    __tablename__ = "portal_sessions"
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(32), index=True)
    email: Mapped[str] = mapped_column(String(320))
    kind: Mapped[str] = mapped_column(String(16), default="recipient")
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float, default=now)
    expires_at: Mapped[float] = mapped_column(Float)


class RateEvent(Base):
    """Counts for rate limits that must hold across processes (code sends, failures)."""

    __tablename__ = "rate_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    bucket: Mapped[str] = mapped_column(String(200), index=True)
    at: Mapped[float] = mapped_column(Float, default=now, index=True)


# --- outbox --------------------------------------------------------------------------------


class OutboxItem(Base):
    """Mail waiting to be sent; the bytes to send are a sealed object."""

    __tablename__ = "outbox"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str | None] = mapped_column(String(32), index=True, nullable=True)
    kind: Mapped[str] = mapped_column(String(16))  # clear | notification | code | dsn
    message_id: Mapped[str | None] = mapped_column(String(32), index=True, nullable=True)
    mail_from: Mapped[str] = mapped_column(String(320))  # "" = null sender (DSNs)
    object_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[float] = mapped_column(Float, default=now)
    expires_at: Mapped[float] = mapped_column(Float)
    # deliver only over STARTTLS with a certificate that verifies (policy action require_tls)
    require_tls: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")


class OutboxRecipient(Base):
    __tablename__ = "outbox_recipients"
    __table_args__ = (Index("ix_outbox_due", "state", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    outbox_id: Mapped[str] = mapped_column(ForeignKey("outbox.id", ondelete="CASCADE"), index=True)
    rcpt: Mapped[str] = mapped_column(String(320))
    state: Mapped[str] = mapped_column(String(16), default="queued")
    # queued | deferred | sent | bounced | held
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(Float, default=0.0)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[float] = mapped_column(Float, default=0.0)
    last_reply: Mapped[str] = mapped_column(String(500), default="")
    updated_at: Mapped[float] = mapped_column(Float, default=now)
    # when the sender was told the mail is delayed (a "delayed" DSN goes once)
    warned_at: Mapped[float | None] = mapped_column(Float, nullable=True)


# --- encryption policy (issue 3) ------------------------------------------------------------


class TenantPolicy(Base):
    """A tenant's encryption policy: the validated document as canonical JSON."""

    __tablename__ = "tenant_policies"
    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    document: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[float] = mapped_column(Float, default=now)
    updated_by: Mapped[str] = mapped_column(String(320), default="")


class PolicyDecision(Base):
    """Why a recipient's copy was handled as it was: the rule that matched and the detector
    hits (kinds and counts, never the matched text)."""

    __tablename__ = "policy_decisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    tenant_id: Mapped[str] = mapped_column(String(32), index=True)
    rcpt: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(16))  # encrypt|require_tls|hold|reject|pass
    method: Mapped[str] = mapped_column(String(16), default="")  # auto|portal|pgp|smime
    disposition: Mapped[str] = mapped_column(String(16), default="")
    rule: Mapped[str] = mapped_column(String(200), default="")
    explanation: Mapped[str] = mapped_column(Text, default="{}")
    at: Mapped[float] = mapped_column(Float, default=now)


class RecipientKey(Base):
    """A recipient's OpenPGP public key or S/MIME certificate known to a tenant."""

    __tablename__ = "recipient_keys"
    __table_args__ = (UniqueConstraint("tenant_id", "kind", "fingerprint", "email"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # pgp | smime
    email: Mapped[str] = mapped_column(String(320), index=True)
    fingerprint: Mapped[str] = mapped_column(String(128))
    algorithm: Mapped[str] = mapped_column(String(32), default="")
    bits: Mapped[int] = mapped_column(Integer, default=0)
    not_after: Mapped[float | None] = mapped_column(Float, nullable=True)
    source: Mapped[str] = mapped_column(String(16), default="import")  # import | wkd
    material: Mapped[bytes] = mapped_column(LargeBinary)  # public key / certificate
    created_at: Mapped[float] = mapped_column(Float, default=now)


class KeyLookup(Base):
    """Cache of WKD look-ups, found or not, so a missing key is not asked for every message."""

    __tablename__ = "key_lookups"
    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    found: Mapped[bool] = mapped_column(Boolean, default=False)
    checked_at: Mapped[float] = mapped_column(Float, default=now)


class HeldMessage(Base):
    """A message (for some recipients) waiting in quarantine for a compliance officer."""

    __tablename__ = "held_messages"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    message_id: Mapped[str] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    tenant_id: Mapped[str] = mapped_column(String(32), index=True)
    recipients: Mapped[str] = mapped_column(Text)  # JSON list of envelope recipients
    rule: Mapped[str] = mapped_column(String(200), default="")
    reason: Mapped[str] = mapped_column(String(500), default="")
    state: Mapped[str] = mapped_column(String(16), default="held")  # held|released|rejected
    created_at: Mapped[float] = mapped_column(Float, default=now)
    decided_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    decided_by: Mapped[str] = mapped_column(String(320), default="")


# --- journaling (issue 4) ------------------------------------------------------------------


class JournalEntry(Base):
    """An Exchange journal report, unwrapped: the original message is a sealed object, its
    true recipient list (Bcc and expanded included) sealed with it; only a keyed hash of
    Message-ID + recipients is stored in clear, to archive a duplicate once."""

    __tablename__ = "journal_entries"
    __table_args__ = (UniqueConstraint("tenant_id", "dedupe_key"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[str] = mapped_column(String(32), index=True)  # the intake queue id
    dedupe_key: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str] = mapped_column(String(40))  # original message, sealed
    meta_object_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    malformed: Mapped[bool] = mapped_column(Boolean, default=False)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[float] = mapped_column(Float, default=now)


# --- the worker's scheduler (migration 0008) -------------------------------------------------


class ScheduledJob(Base):
    """A periodic job of the worker (archive sweep, billing day, ...). A worker runs it only
    after taking the row's lease with a conditional UPDATE, so several workers never run the
    same job at once and a dead worker's lease runs out."""

    __tablename__ = "scheduled_jobs"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_run_at: Mapped[float] = mapped_column(Float, default=0.0)
    owner: Mapped[str] = mapped_column(String(64), default="", server_default="")
    lease_until: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    last_started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_error: Mapped[str] = mapped_column(String(500), default="", server_default="")
    runs: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


# --- archive index, retention, legal holds (issue 5; migration 0004) -------------------------


class ArchiveEntry(Base):
    """One archived message: the gateway's accepted original (``source = gateway``) or an
    unwrapped journal report (``source = journal``). What search results show (addresses,
    subject, date, attachment names, size, SHA-256 of the original) is the sealed JSON
    ``meta_object_id``; subjects, addresses and digests are never in clear columns."""

    __tablename__ = "archive_entries"
    __table_args__ = (Index("ix_archive_entries_tenant_received", "tenant_id", "received_at"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    source: Mapped[str] = mapped_column(String(16))  # gateway | journal
    message_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    object_id: Mapped[str] = mapped_column(String(40))  # the sealed original
    meta_object_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    received_at: Mapped[float] = mapped_column(Float, index=True)
    size: Mapped[int] = mapped_column(Integer, default=0)
    has_attachment: Mapped[bool] = mapped_column(Boolean, default=False)
    decision: Mapped[str] = mapped_column(String(16), default="")
    retain_until: Mapped[float] = mapped_column(Float, index=True)
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    shredded_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class ArchiveTerm(Base):
    """A keyed blind-index token of one archive entry (HMAC of ``field:value`` under the
    tenant's index key): equality search without the value in clear."""

    __tablename__ = "archive_terms"
    __table_args__ = (
        # a token's posting list in time order: a page is an index range scan
        Index("ix_archive_terms_lookup", "tenant_id", "token", "received_at", "entry_id"),
    )
    tenant_id: Mapped[str] = mapped_column(String(32))
    entry_id: Mapped[str] = mapped_column(
        ForeignKey("archive_entries.id", ondelete="CASCADE"), primary_key=True
    )
    token: Mapped[str] = mapped_column(String(32), primary_key=True)
    received_at: Mapped[float] = mapped_column(Float, default=0.0)  # the entry's, copied


class LegalHold(Base):
    """A legal hold: while ``released_at`` is None nothing it covers is shredded or
    deleted. ``kind`` = ``tenant`` (everything of the tenant), ``search`` (the entries that
    matched a search when it was placed, in ``legal_hold_items``; the criteria only as a
    keyed hash) or ``message`` (one entry, in ``legal_hold_items``)."""

    __tablename__ = "legal_holds"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # tenant | search | message
    name: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(500), default="")
    criteria_hash: Mapped[str] = mapped_column(String(64), default="", server_default="")
    items: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    placed_by: Mapped[str] = mapped_column(String(320))
    placed_at: Mapped[float] = mapped_column(Float, default=now)
    released_by: Mapped[str] = mapped_column(String(320), default="", server_default="")
    released_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class LegalHoldItem(Base):
    """An archive entry under a search or message hold (materialised when placed)."""

    __tablename__ = "legal_hold_items"
    hold_id: Mapped[str] = mapped_column(
        ForeignKey("legal_holds.id", ondelete="CASCADE"), primary_key=True
    )
    entry_id: Mapped[str] = mapped_column(
        ForeignKey("archive_entries.id"), primary_key=True, index=True
    )
    tenant_id: Mapped[str] = mapped_column(String(32), index=True)


# --- billing accounts, invoices, dunning, support PINs (issue 6; migration 0005) -------------


class BillingAccount(Base):
    """Who pays: a partner (for all its tenants) or a single tenant. ``external_id`` is the
    billing system's account id. ``standing_reason`` says why an account is not in good
    standing: ``billing`` (dunning; a payment reinstates it), ``trial`` (trial ended),
    ``cancelled`` (subscription cancelled) or ``manual`` (an operator; payment does not)."""

    __tablename__ = "billing_accounts"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # partner | tenant
    partner_id: Mapped[str | None] = mapped_column(
        ForeignKey("partners.id"), nullable=True, index=True
    )
    tenant_id: Mapped[str | None] = mapped_column(
        ForeignKey("tenants.id"), nullable=True, index=True
    )
    name: Mapped[str] = mapped_column(String(200), default="")
    plan: Mapped[str] = mapped_column(String(16), default="paid")  # trial | nfr | paid
    trial_ends_on: Mapped[datetime.date | None] = mapped_column(Date, nullable=True)
    standing: Mapped[str] = mapped_column(String(16), default="good")
    # good | suspended | terminated
    standing_reason: Mapped[str] = mapped_column(String(16), default="", server_default="")
    delinquent: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    delinquent_year: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[float] = mapped_column(Float, default=now)
    updated_at: Mapped[float] = mapped_column(Float, default=now)


class AccountContact(Base):
    """A person of a billing account; the one with role ``billing`` gets dunning mail.
    (Migration 0006 adds the support-PIN columns.)"""

    __tablename__ = "account_contacts"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("billing_accounts.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(320), index=True)  # lower-case
    name: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str] = mapped_column(String(64), default="")
    role: Mapped[str] = mapped_column(String(16), default="billing")
    # billing | owner | technical | other
    created_at: Mapped[float] = mapped_column(Float, default=now)


class Invoice(Base):
    __tablename__ = "invoices"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("billing_accounts.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[str] = mapped_column(String(64), default="")
    amount_cents: Mapped[int] = mapped_column(Integer, default=0)  # minor units
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    issued_on: Mapped[datetime.date | None] = mapped_column(Date, nullable=True)
    due_on: Mapped[datetime.date | None] = mapped_column(Date, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | paid | void
    paid_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    paid_on: Mapped[datetime.date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[float] = mapped_column(Float, default=now)


class PaymentMethod(Base):
    __tablename__ = "payment_methods"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("billing_accounts.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16), default="primary")  # primary | secondary
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | failed
    created_at: Mapped[float] = mapped_column(Float, default=now)
    updated_at: Mapped[float] = mapped_column(Float, default=now)


class BillingEvent(Base):
    """An inbound billing event already applied: its id is the primary key, inserted in the
    same transaction as the event's effect, so each event is applied exactly once."""

    __tablename__ = "billing_events"
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(32), default="applied")  # applied | ignored
    received_at: Mapped[float] = mapped_column(Float, default=now)


class DunningAction(Base):
    """An action of the dunning schedule that was taken. The unique key makes a day's run
    idempotent: the same action for the same account, invoice and period is taken once."""

    __tablename__ = "dunning_actions"
    __table_args__ = (
        UniqueConstraint(
            "account_id", "invoice_id", "action", "period", name="uq_dunning_actions_once"
        ),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("billing_accounts.id", ondelete="CASCADE"), index=True
    )
    invoice_id: Mapped[str] = mapped_column(String(32), default="")  # "" = about the account
    action: Mapped[str] = mapped_column(String(40))
    period: Mapped[str] = mapped_column(String(16), default="")
    for_date: Mapped[datetime.date] = mapped_column(Date)
    created_at: Mapped[float] = mapped_column(Float, default=now)


class OutboundWebhook(Base):
    """A signed webhook to the billing system waiting to be delivered (retries with
    backoff)."""

    __tablename__ = "outbound_webhooks"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # the event id we send
    type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[str] = mapped_column(Text)  # the JSON body, exactly as signed and sent
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(Float, default=now, index=True)
    delivered_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_error: Mapped[str] = mapped_column(String(500), default="", server_default="")
    created_at: Mapped[float] = mapped_column(Float, default=now)


# --- KMS derivation secret (issue 5; migration 0009) ---


class KmsDerivationSecret(Base):
    """The derivation secret of a KMS root (``RootKey.derive``), wrapped by the root key in
    KMS (associated data ``sealmail/derive/v1``). One row (``name`` = ``"root"``), so hosts
    sharing the database need no file copied between them; re-wrapped on root rotation."""

    __tablename__ = "kms_derivation_secrets"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    wrapped_secret: Mapped[bytes] = mapped_column(LargeBinary)
    root_key_id: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[float] = mapped_column(Float, default=now)
    updated_at: Mapped[float] = mapped_column(Float, default=now)
