"""Reroute to the portal: a copy that needs verified TLS the next hop cannot give is never
sent; its recipients go back to the pipeline to be sealed to the portal instead."""

from __future__ import annotations

import logging

from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncSession

from core import outbox
from core.audit import audit
from core.metrics import metrics
from core.models import Message, MessageRecipient, OutboxRecipient, now
from core.services import Services

log = logging.getLogger("sealmail.gateway.delivery")

REROUTED = "rerouted"


async def reroute_to_portal(
    services: Services, owner: str, group: list[outbox.Claimed], why: str
) -> None:
    """Verified TLS was required and the next hop cannot give it: never send in clear.
    The outbox recipients end ``rerouted``; their message recipients get ``override =
    "portal"`` and the message goes back to ``received`` so the pipeline seals it."""
    first = group[0]
    async with services.db.write_gate.hold(), services.db.session() as s:
        moved: list[str] = []
        for c in group:
            if not await _finish_rerouted(s, c.recipient_id, owner, why):
                continue  # our lease ran out; whoever holds it now decides
            moved.append(c.rcpt)
        if moved and first.message_id:
            await s.execute(
                update(MessageRecipient)
                .where(
                    MessageRecipient.message_id == first.message_id,
                    func.lower(MessageRecipient.rcpt).in_([r.lower() for r in moved]),
                )
                .values(override="portal", state="pending")
            )
            await s.execute(
                update(Message)
                .where(Message.id == first.message_id)
                .values(state="received", next_attempt_at=0.0)
            )
        if moved:
            await audit(
                s,
                first.tenant_id,
                "delivery",
                "delivery.rerouted_to_portal",
                first.message_id or first.outbox_id,
                outbox=first.outbox_id,
                recipients=moved,
                reason=why[:300],
            )
        await s.commit()
    if moved:
        metrics().deliveries.labels(first.tenant_id or "", first.kind, REROUTED).inc(len(moved))
    for rcpt in moved:
        log.warning(
            "%s to=<%s> require_tls: not sent, rerouted to the portal (%s)",
            first.outbox_id,
            rcpt,
            why,
        )


async def _finish_rerouted(s: AsyncSession, rid: int, owner: str, why: str) -> bool:
    result = await s.execute(
        update(OutboxRecipient)
        .where(OutboxRecipient.id == rid, OutboxRecipient.lease_owner == owner)
        .values(
            state=REROUTED,
            lease_owner=None,
            lease_until=0.0,
            updated_at=now(),
            last_reply=f"rerouted to portal: {why}"[:500],
            attempts=OutboxRecipient.attempts + 1,
        )
    )
    return getattr(result, "rowcount", 0) == 1
