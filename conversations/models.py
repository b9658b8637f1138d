"""The conversations' own table: what happened to a sealed message, per recipient."""

from __future__ import annotations

from sqlalchemy import Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.models import Base, now


class MessageEvent(Base):
    """One event of one message for one recipient (or for all: ``recipient`` = ""):
    ``notified``, ``opened``, ``downloaded``, ``replied``, ``forwarded``, ``revoked``,
    ``expiry_changed``, ``resent``, ``copy_requested``, ``receipt_sent``. Never content:
    ``detail`` holds ids, counts and times as JSON."""

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
