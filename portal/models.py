"""The portal's own table: rate-limit events that must hold across processes."""

from __future__ import annotations

from sqlalchemy import Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.models import Base, now

# --- rate limits ------------------------------------------------------------------------------


class RateEvent(Base):
    """Counts for rate limits that must hold across processes (code sends, failures)."""

    __tablename__ = "rate_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    bucket: Mapped[str] = mapped_column(String(200), index=True)
    at: Mapped[float] = mapped_column(Float, default=now, index=True)
