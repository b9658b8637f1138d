"""The portal's own table: rate-limit events that must hold across processes."""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Integer, String
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
