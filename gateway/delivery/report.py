"""What delivery reports of an outcome besides its rows: the latency and delivery metrics,
and the bounce or delay notice to the envelope sender."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core import outbox
from core.metrics import metrics
from core.models import Message, now
from gateway.delivery.dsn import queue_dsn
from gateway.delivery.relay import Reply

# copies of the tenant's own message to its recipient (the evidence log's "delivered")
RELAYED = ("clear", "encrypted")
NOTICES = ("notification", "pdf")  # a recipient's notice of a sealed message (pdf: method pdf)


async def accepted_at(
    s: AsyncSession, item: outbox.Claimed, results: dict[str, Reply]
) -> float | None:
    """When intake answered 250 for the message behind ``item`` (for the latency
    histogram); the item's own creation time for mail we wrote ourselves."""
    if not any(r.ok for r in results.values()):
        return None
    if item.message_id and item.kind in RELAYED:
        received = await s.scalar(select(Message.received_at).where(Message.id == item.message_id))
        if received is not None:
            return float(received)
    return item.created_at


def count(c: outbox.Claimed, reply: Reply | None, expired: bool, accepted_at: float | None) -> None:
    """The outcome of one attempt for ``/metrics`` (as delivery judged it)."""
    if reply is not None and reply.ok:
        result = "sent"
        if accepted_at is not None:
            metrics().latency.labels(c.kind).observe(max(0.0, now() - accepted_at))
    elif reply is None or not (reply.permanent or expired):
        result = "deferred"
    else:
        result = "bounced"
    metrics().deliveries.labels(c.tenant_id or "", c.kind, result).inc()


async def enqueue_dsn(  # noqa: ANN001
    services, session, item: outbox.Claimed, data: bytes, failures, action: str = "failed"
) -> None:
    """A bounce (``failed``) or a delay warning (``delayed``) to the envelope sender."""
    assert item.tenant_id is not None
    await queue_dsn(
        services,
        session,
        tenant_id=item.tenant_id,
        to_addr=item.mail_from,
        original=data,
        failures=failures,
        arrival=item.created_at,
        message_id=item.message_id,
        action=action,
        retry_until=item.expires_at,
    )
