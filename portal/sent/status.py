"""The status of a sent message per recipient, readable: how it was protected, whether it was
delivered, held or bounced, and when the portal copy was first opened (shared by the list
and the detail page of ``/sent``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core import quarantine
from core.models import MessageRecipient, OutboxItem, OutboxRecipient, PortalAccess
from core.policy.models import HeldMessage

_NOT_DELIVERY = ("dsn", "code")  # outbox items about a message that are not its copies
METHODS = {
    "portal": "sealed to the portal",
    "pgp": "OpenPGP",
    "smime": "S/MIME",
    "tls": "TLS only",
    "clear": "clear",
    "hold": "held",
    "reject": "rejected",
    "bounced": "bounced",
    "journal": "journal",
}

DELIVERY = {
    "queued": "waiting to be sent",
    "deferred": "retrying",
    "sent": "delivered",
    "bounced": "bounced",
    "held": "held",
}

HELD_STATES = {
    "held": "waiting for review",
    "released": "released by compliance",
    "rejected": "rejected by compliance (you were told)",
}


@dataclasses.dataclass(frozen=True)
class RecipientStatus:
    rcpt: str
    disposition: str  # the raw value, for CSS and tests
    method: str  # readable
    delivery: str
    detail: str  # the last reply of a failed attempt, or the reason
    opened_at: float | None
    portal: bool


def _delivery_label(states: Sequence[OutboxRecipient], disposition: str) -> tuple[str, str]:
    if not states:
        return "", ""
    # the worst state wins: one bounced copy is a bounce, one waiting copy is waiting
    for state in ("bounced", "deferred", "queued", "held", "sent"):
        for row in states:
            if row.state == state:
                label = DELIVERY.get(state, state)
                if state == "sent" and disposition == "portal":
                    label = "notification delivered"
                if state == "deferred":
                    label = f"retrying (attempt {row.attempts})"
                return label, row.last_reply if state in ("bounced", "deferred") else ""
    return states[0].state, ""


def _fallback_delivery(r: MessageRecipient, held: Sequence[HeldMessage]) -> str:
    if r.state == "pending":
        return "being processed"
    if r.disposition == "hold":
        for h in held:
            if r.rcpt.lower() in (x.lower() for x in quarantine.recipients_of(h)):
                return HELD_STATES.get(h.state, h.state)
        return "waiting for review"
    if r.disposition == "reject":
        return "not sent (you were told)"
    if r.disposition == "bounced":
        return "bounced"
    return "-"


async def statuses(
    s: AsyncSession, tenant_id: str, message_ids: Iterable[str]
) -> dict[str, list[RecipientStatus]]:
    """Each message's recipients: how the policy sent it, where delivery stands, and whether
    a portal recipient opened it. Three queries for a whole page of messages."""
    ids = list(message_ids)
    out: dict[str, list[RecipientStatus]] = {m: [] for m in ids}
    if not ids:
        return out
    rcpts = (
        (
            await s.execute(
                select(MessageRecipient)
                .where(MessageRecipient.message_id.in_(ids))
                .order_by(MessageRecipient.id)
            )
        )
        .scalars()
        .all()
    )
    copies: dict[tuple[str, str], list[OutboxRecipient]] = {}
    rows = await s.execute(
        select(OutboxItem.message_id, OutboxRecipient)
        .join(OutboxRecipient, OutboxRecipient.outbox_id == OutboxItem.id)
        .where(
            OutboxItem.message_id.in_(ids),
            OutboxItem.tenant_id == tenant_id,
            OutboxItem.kind.not_in(_NOT_DELIVERY),
        )
    )
    for message_id, row in rows.all():
        copies.setdefault((str(message_id), row.rcpt.lower()), []).append(row)
    opened: dict[tuple[str, str], float | None] = {}
    for access in (
        (
            await s.execute(
                select(PortalAccess).where(
                    PortalAccess.message_id.in_(ids), PortalAccess.tenant_id == tenant_id
                )
            )
        )
        .scalars()
        .all()
    ):
        key = (access.message_id, access.recipient.lower())
        first = [t for t in (opened.get(key), access.first_opened_at) if t is not None]
        opened[key] = min(first) if first else None
    held_rows = (
        (
            await s.execute(
                select(HeldMessage).where(
                    HeldMessage.message_id.in_(ids), HeldMessage.tenant_id == tenant_id
                )
            )
        )
        .scalars()
        .all()
    )
    for r in rcpts:
        key = (r.message_id, r.rcpt.lower())
        label, detail = _delivery_label(copies.get(key, []), r.disposition)
        held = [h for h in held_rows if h.message_id == r.message_id]
        out[r.message_id].append(
            RecipientStatus(
                rcpt=r.rcpt,
                disposition=r.disposition,
                method=METHODS.get(r.disposition, r.disposition or "not decided yet"),
                delivery=label or _fallback_delivery(r, held),
                detail=detail or (r.reason if r.disposition in ("reject", "bounced") else ""),
                opened_at=opened.get(key),
                portal=key in opened,
            )
        )
    return out
