"""The encryption policy's tables: a tenant's policy document, why each recipient's copy was
handled as it was, and the messages held in quarantine (issue 3).
"""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.models import Base, now

# --- encryption policy (issue 3) --------------------------------------------------------------


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


class PolicyVersion(Base):
    """Every saved version of a tenant's policy (issue 13): who saved it, when, and the
    document, so an admin sees the history and can roll back."""

    __tablename__ = "policy_versions"
    __table_args__ = (UniqueConstraint("tenant_id", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float, default=now)
    created_by: Mapped[str] = mapped_column(String(320), default="")
    note: Mapped[str] = mapped_column(String(200), default="")


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
    method: Mapped[str] = mapped_column(String(16), default="")  # auto|portal|pgp|smime|pdf
    disposition: Mapped[str] = mapped_column(String(16), default="")
    rule: Mapped[str] = mapped_column(String(200), default="")
    explanation: Mapped[str] = mapped_column(Text, default="{}")
    at: Mapped[float] = mapped_column(Float, default=now)


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
