"""The portal's own tables: rate-limit events, the Outlook add-in's tokens, passkeys, their
challenges and remembered devices."""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from core.models import Base, now

# --- rate limits ------------------------------------------------------------------------------


class RateEvent(Base):
    """Counts for rate limits that must hold across processes (code sends, failures)."""

    __tablename__ = "rate_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    bucket: Mapped[str] = mapped_column(String(200), index=True)
    at: Mapped[float] = mapped_column(Float, default=now, index=True)


# --- the Outlook add-in ---------------------------------------------------------------------


class AddinToken(Base):
    """A user-scoped token of the Outlook add-in: one user of one tenant proved their address
    with an emailed code in the task pane. Stored as a SHA-256 only; never a tenant's key."""

    __tablename__ = "addin_tokens"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[float] = mapped_column(Float, default=now)
    expires_at: Mapped[float] = mapped_column(Float)
    last_used_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)


# --- passkeys and remembered devices (portal.signin.passkeys, portal.signin.devices) ---------


class Passkey(Base):
    """A WebAuthn credential of one identity (tenant, lower-cased address): it proves what an
    emailed code proves, at every door. Offered and accepted only on its own ``rp_id`` (the
    host the browser was on when it was made)."""

    __tablename__ = "passkeys"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    rp_id: Mapped[str] = mapped_column(String(253))
    credential_id: Mapped[str] = mapped_column(String(1400), unique=True)  # base64url
    public_key: Mapped[bytes] = mapped_column(LargeBinary)  # COSE
    sign_count: Mapped[int] = mapped_column(Integer, default=0)
    transports: Mapped[str] = mapped_column(String(200), default="")  # comma-separated
    user_handle: Mapped[str] = mapped_column(String(128))  # base64url, one per identity
    name: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[float] = mapped_column(Float, default=now)
    last_used_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    __table_args__ = (Index("ix_passkeys_identity", "tenant_id", "email"),)


class WebAuthnChallenge(Base):
    """One ceremony's challenge: single use (taken by a conditional DELETE), a few minutes,
    bound to the browser (the session's or pre-session nonce's hash) and a purpose."""

    __tablename__ = "webauthn_challenges"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    challenge: Mapped[str] = mapped_column(String(128))  # base64url
    purpose: Mapped[str] = mapped_column(String(40))
    binding: Mapped[str] = mapped_column(String(64))
    rp_id: Mapped[str] = mapped_column(String(253))
    tenant_id: Mapped[str] = mapped_column(String(32), default="")
    email: Mapped[str] = mapped_column(String(320), default="")
    user_handle: Mapped[str] = mapped_column(String(128), default="")  # a registration's
    expires_at: Mapped[float] = mapped_column(Float, index=True)


class RememberedDevice(Base):
    """A browser that may sign one identity in without a code until ``expires_at``: the
    cookie's 256-bit secret is stored only as its SHA-256, with a hash of the User-Agent it
    was set for (a changed User-Agent refuses it; this is not hardware binding)."""

    __tablename__ = "remembered_devices"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64), index=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    ua_hash: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[float] = mapped_column(Float, default=now)
    expires_at: Mapped[float] = mapped_column(Float)
    last_used_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    __table_args__ = (Index("ix_remembered_devices_identity", "tenant_id", "email"),)
