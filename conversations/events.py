"""Recording and reading a message's events (:class:`conversations.models.MessageEvent`)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.models import MessageEvent
from core.models import now

NOTIFIED = "notified"
OPENED = "opened"
DOWNLOADED = "downloaded"
REPLIED = "replied"
FORWARDED = "forwarded"
REVOKED = "revoked"
EXPIRY_CHANGED = "expiry_changed"
RESENT = "resent"
COPY_REQUESTED = "copy_requested"
RECEIPT_SENT = "receipt_sent"

KINDS = (
    NOTIFIED,
    OPENED,
    DOWNLOADED,
    REPLIED,
    FORWARDED,
    REVOKED,
    EXPIRY_CHANGED,
    RESENT,
    COPY_REQUESTED,
    RECEIPT_SENT,
)


def record(
    session: AsyncSession,
    tenant_id: str,
    message_id: str,
    kind: str,
    recipient: str = "",
    actor: str = "",
    at: float | None = None,
    **detail: Any,
) -> MessageEvent:
    """Add one event to ``session`` (the caller commits it with what it is about)."""
    if kind not in KINDS:
        raise ValueError(f"unknown message event {kind!r}")
    event = MessageEvent(
        tenant_id=tenant_id,
        message_id=message_id,
        recipient=recipient.strip().lower(),
        kind=kind,
        actor=actor,
        detail=json.dumps(detail, sort_keys=True, default=str),
        at=now() if at is None else at,
    )
    session.add(event)
    return event


async def of_message(session: AsyncSession, tenant_id: str, message_id: str) -> list[MessageEvent]:
    """Every event of one message of this tenant, oldest first."""
    rows = await session.execute(
        select(MessageEvent)
        .where(MessageEvent.tenant_id == tenant_id, MessageEvent.message_id == message_id)
        .order_by(MessageEvent.at, MessageEvent.id)
    )
    return list(rows.scalars().all())
