"""The gateway's own tables: the worker's scheduled jobs (migration 0008) and the cache of WKD
key look-ups.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.models import Base, now

# --- the worker's scheduler (migration 0008) --------------------------------------------------


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


# --- WKD look-ups (issue 3) -------------------------------------------------------------------


class KeyLookup(Base):
    """Cache of WKD look-ups, found or not, so a missing key is not asked for every message."""

    __tablename__ = "key_lookups"
    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    found: Mapped[bool] = mapped_column(Boolean, default=False)
    checked_at: Mapped[float] = mapped_column(Float, default=now)
