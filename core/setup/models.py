"""The onboarding check's tables. A check is opened from ``/admin/setup`` (or the partner's
console) and watches the tenant's next message; intake, the pipeline and delivery each add
the step they saw (or the fault that stopped the message) as a row of ``setup_check_steps``.
Rows hold step names, reply codes and addresses of the envelope, never content."""

from __future__ import annotations

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.models import Base, now


class SetupCheck(Base):
    __tablename__ = "setup_checks"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    started_by: Mapped[str] = mapped_column(String(320), default="")
    started_at: Mapped[float] = mapped_column(Float, default=now)
    expires_at: Mapped[float] = mapped_column(Float)
    message_id: Mapped[str] = mapped_column(String(32), default="")  # the message it watches
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    outcome: Mapped[str] = mapped_column(String(16), default="")  # "" | ok | fault | expired


class SetupCheckStep(Base):
    __tablename__ = "setup_check_steps"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    check_id: Mapped[str] = mapped_column(
        ForeignKey("setup_checks.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[float] = mapped_column(Float, default=now)
    step: Mapped[str] = mapped_column(String(32))
    ok: Mapped[bool] = mapped_column(Boolean, default=True)
    detail: Mapped[str] = mapped_column(String(500), default="")
