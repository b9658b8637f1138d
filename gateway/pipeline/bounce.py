"""A bounce of a received message to its envelope sender (a policy refusal, or a message
that could not be processed before its time in the queue ran out)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from core.models import Message
from core.services import Services
from gateway.delivery.dsn import Failure, queue_dsn


async def enqueue_bounce(
    services: Services,
    session: AsyncSession,
    message: Message,
    raw: bytes,
    failures: list[Failure],
) -> None:
    """An RFC 3464 bounce of ``message`` to its envelope sender (never for the null
    sender: no bounce to a bounce)."""
    if not message.mail_from:
        return
    await queue_dsn(
        services,
        session,
        tenant_id=message.tenant_id,
        to_addr=message.mail_from,
        original=raw,
        failures=failures,
        arrival=message.received_at,
        message_id=message.id,
    )
