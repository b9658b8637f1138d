"""Partners' own tables: who may sign in to ``/partner`` (partner admins and technicians) and
the partner's API keys (scope ``partner``: its tenants, nothing else). Keys are stored as a
SHA-256 only, like tenants' keys (:class:`core.models.ApiKey`)."""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.models import Base, now

PARTNER_ROLES = ("partner-admin", "partner-tech")


class PartnerUser(Base):
    __tablename__ = "partner_users"
    __table_args__ = (UniqueConstraint("partner_id", "email"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    partner_id: Mapped[str] = mapped_column(
        ForeignKey("partners.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(320), index=True)
    role: Mapped[str] = mapped_column(String(16), default="partner-tech")
    created_at: Mapped[float] = mapped_column(Float, default=now)
    invited_by: Mapped[str] = mapped_column(String(320), default="")
    last_signin_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class PartnerApiKey(Base):
    __tablename__ = "partner_api_keys"
    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    partner_id: Mapped[str] = mapped_column(
        ForeignKey("partners.id", ondelete="CASCADE"), index=True
    )
    prefix: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(100), default="")
    created_by: Mapped[str] = mapped_column(String(320), default="")
    created_at: Mapped[float] = mapped_column(Float, default=now)
    last_used_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)
