"""The shared schema: ``Base`` and the tables several packages use (accounts, keys and sealed
objects, messages, portal access, the outbox, recipients' keys, billing accounts and their
contacts, support PINs, the KMS derivation secret). Times are UTC epoch seconds (float) so
that SQLite and PostgreSQL agree.

A table that belongs to one feature lives in that feature's package on this ``Base``
(:mod:`core.policy.models`, :mod:`archive.models`, :mod:`billing_hooks.models`,
:mod:`gateway.models`, :mod:`portal.models`); nothing here imports them. Whatever needs the
whole schema (migrations' autogenerate, the tests that compare migrations with the models)
imports :mod:`sealmail.schema`.

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
    # the partner's not-for-resale agreement: per NFR tenant, users and messages a month
    nfr_max_users: Mapped[int | None] = mapped_column(Integer, nullable=True)
    nfr_max_messages: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Tenant(Base):
    __tablename__ = "tenants"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    partner_id: Mapped[str | None] = mapped_column(ForeignKey("partners.id"), nullable=True)
    plan: Mapped[str] = mapped_column(String(16), default="paid")  # trial | nfr | paid
    standing: Mapped[str] = mapped_column(String(16), default="active")
    # a trial runs through this day (UTC) and ends by itself after it; reminders sent (days)
    trial_ends_on: Mapped[datetime.date | None] = mapped_column(Date, nullable=True)
    trial_reminders: Mapped[str] = mapped_column(String(32), default="", server_default="")
    # the Outlook add-in's send-time check: off | warn | offer | block
    addin_on_send: Mapped[str] = mapped_column(String(8), default="offer", server_default="offer")
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
    # secure conversations (issue 12): defaults a message's X-Sealmail-* options override
    receipt_default: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    reply_default: Mapped[str] = mapped_column(String(8), default="all", server_default="all")
    forward_default: Mapped[str] = mapped_column(String(8), default="yes", server_default="yes")
    # who may sign in at /sent and /compose: "domain" (any address of its domains) | "listed"
    sent_users: Mapped[str] = mapped_column(String(8), default="domain", server_default="domain")
    # the tenant's own portal host name (issue 13): its links point there, its pages theme by it
    portal_host: Mapped[str | None] = mapped_column(
        String(253), nullable=True, unique=True, index=True
    )
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
    label: Mapped[str] = mapped_column(String(100), default="", server_default="")
    created_by: Mapped[str] = mapped_column(String(320), default="", server_default="")
    last_used_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("tenant_id", "email"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16), default="sender")  # admin | sender
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[float] = mapped_column(Float, default=now)
    invited_by: Mapped[str] = mapped_column(String(320), default="", server_default="")
    last_signin_at: Mapped[float | None] = mapped_column(Float, nullable=True)


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
    """A tenant's key-encryption key, wrapped by the root key. A partner has one too, under
    its partner id (no foreign key since migration 0013): it seals the mail sealmail writes to
    the partner's people, who may have no tenant yet."""

    __tablename__ = "tenant_keys"
    tenant_id: Mapped[str] = mapped_column(String(32), primary_key=True)
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
    # --- secure conversations (issue 12; package ``conversations``) ---
    # smtp | reply | forward | compose (the last three written in the portal)
    origin: Mapped[str] = mapped_column(String(16), default="smtp", server_default="smtp")
    # the conversation: the id of its first message ("" until the pipeline has run)
    thread_id: Mapped[str] = mapped_column(String(32), default="", server_default="", index=True)
    parent_id: Mapped[str] = mapped_column(String(32), default="", server_default="")
    # SHA-256 of the tenant id and the normalised Message-ID header: finds the parent of a
    # reply by mail (In-Reply-To / References) without keeping the header in clear
    msgid_hash: Mapped[str] = mapped_column(String(64), default="", server_default="", index=True)
    # per-message options (X-Sealmail-Receipt / -Reply / -Forward; "" = the tenant's default)
    receipt: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    receipt_sent_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    reply_mode: Mapped[str] = mapped_column(String(8), default="", server_default="")
    forward_mode: Mapped[str] = mapped_column(String(8), default="", server_default="")


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
    # --- secure conversations (issue 12) ---
    # recipient: notified with a link | author: the writer's own copy of a portal reply
    kind: Mapped[str] = mapped_column(String(16), default="recipient", server_default="recipient")
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    revoked_by: Mapped[str] = mapped_column(String(320), default="", server_default="")
    first_downloaded_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    replied_at: Mapped[float | None] = mapped_column(Float, nullable=True)  # the last reply
    copy_requested_at: Mapped[float | None] = mapped_column(Float, nullable=True)


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
    # a pending sign-in's code tries, counted before each compare (portal.signin.stores)
    tries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # how it was opened: code | passkey | device; a passkey confirmed later makes it "passkey"
    factor: Mapped[str] = mapped_column(String(12), default="code", server_default="code")
    # the sealed messages whose passphrase was given in this session (comma-separated ids)
    unlocked: Mapped[str] = mapped_column(Text, default="", server_default="")


# --- attempt limits ---------------------------------------------------------------------------


class AttemptCounter(Base):
    """Tries at a secret counted per key (``ip:...``, ``user:...``) in a window, taken
    before the secret is checked (:mod:`core.attempts`): SMTP AUTH, the support desk's
    agent keys."""

    __tablename__ = "attempt_counters"
    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    tries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    window_start: Mapped[float] = mapped_column(Float, default=now)


# --- outbox --------------------------------------------------------------------------------


class OutboxItem(Base):
    """Mail waiting to be sent; the bytes to send are a sealed object."""

    __tablename__ = "outbox"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str | None] = mapped_column(String(32), index=True, nullable=True)
    kind: Mapped[str] = mapped_column(String(16))  # clear | notification | pdf | code | dsn
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


# --- recipients' public keys (issue 3) ------------------------------------------------------


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


# --- billing accounts and their contacts (issue 6; migration 0005) --------------------------


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
