"""The outbox: mail waiting to be sent, with per-recipient state and leases.

Workers claim due recipients with a lease (PostgreSQL ``FOR UPDATE SKIP LOCKED``; on both
databases a conditional ``UPDATE`` that only one claimant can win), so two workers never
send the same recipient at once and a dead worker's lease simply runs out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from core.ids import queue_id
from core.models import OutboxItem, OutboxRecipient, now

PENDING = ("queued", "deferred")
KINDS = ("clear", "encrypted", "notification", "code", "dsn")


@dataclasses.dataclass(frozen=True)
class Claimed:
    recipient_id: int
    rcpt: str
    attempts: int
    outbox_id: str
    kind: str
    tenant_id: str | None
    message_id: str | None
    mail_from: str
    object_id: str
    created_at: float
    expires_at: float


async def enqueue(
    session: AsyncSession,
    *,
    kind: str,
    tenant_id: str | None,
    mail_from: str,
    recipients: Iterable[str],
    object_id: str,
    lifetime: float,
    message_id: str | None = None,
) -> OutboxItem:
    """Add an item; the caller commits (in the same transaction as what caused it)."""
    if kind not in KINDS:
        raise ValueError(f"unknown outbox kind {kind!r}")
    created = now()
    item = OutboxItem(
        id=queue_id(),
        tenant_id=tenant_id,
        kind=kind,
        message_id=message_id,
        mail_from=mail_from,
        object_id=object_id,
        created_at=created,
        expires_at=created + lifetime,
    )
    session.add(item)
    for rcpt in recipients:
        session.add(OutboxRecipient(outbox_id=item.id, rcpt=rcpt, next_attempt_at=created))
    return item


async def claim_due(
    session: AsyncSession, owner: str, limit: int, lease_seconds: float, is_postgres: bool
) -> list[Claimed]:
    """Lease up to ``limit`` due recipients to ``owner`` and commit the lease."""
    t = now()
    stmt = (
        select(OutboxRecipient.id)
        .where(
            OutboxRecipient.state.in_(PENDING),
            OutboxRecipient.next_attempt_at <= t,
            OutboxRecipient.lease_until < t,
        )
        .order_by(OutboxRecipient.next_attempt_at, OutboxRecipient.id)
        .limit(limit)
    )
    if is_postgres:
        stmt = stmt.with_for_update(skip_locked=True)
    ids = list((await session.execute(stmt)).scalars().all())
    won: list[int] = []
    for rid in ids:
        result = cast(
            CursorResult[Any],
            await session.execute(
                update(OutboxRecipient)
                .where(OutboxRecipient.id == rid, OutboxRecipient.lease_until < t)
                .values(lease_owner=owner, lease_until=t + lease_seconds)
            ),
        )
        if result.rowcount == 1:
            won.append(rid)
    await session.commit()
    if not won:
        return []
    rows = await session.execute(
        select(OutboxRecipient, OutboxItem)
        .join(OutboxItem, OutboxItem.id == OutboxRecipient.outbox_id)
        .where(OutboxRecipient.id.in_(won))
        .order_by(OutboxRecipient.id)
    )
    return [
        Claimed(
            recipient_id=r.id,
            rcpt=r.rcpt,
            attempts=r.attempts,
            outbox_id=i.id,
            kind=i.kind,
            tenant_id=i.tenant_id,
            message_id=i.message_id,
            mail_from=i.mail_from,
            object_id=i.object_id,
            created_at=i.created_at,
            expires_at=i.expires_at,
        )
        for r, i in rows.all()
    ]


async def _finish(session: AsyncSession, rid: int, owner: str, **values: object) -> bool:
    result = cast(
        CursorResult[Any],
        await session.execute(
            update(OutboxRecipient)
            .where(OutboxRecipient.id == rid, OutboxRecipient.lease_owner == owner)
            .values(lease_owner=None, lease_until=0.0, updated_at=now(), **values)
        ),
    )
    return result.rowcount == 1


async def mark_sent(session: AsyncSession, rid: int, owner: str, reply: str) -> bool:
    return await _finish(
        session,
        rid,
        owner,
        state="sent",
        last_reply=reply[:500],
        attempts=OutboxRecipient.attempts + 1,
    )


async def mark_deferred(
    session: AsyncSession, rid: int, owner: str, reply: str, next_attempt_at: float
) -> bool:
    return await _finish(
        session,
        rid,
        owner,
        state="deferred",
        last_reply=reply[:500],
        next_attempt_at=next_attempt_at,
        attempts=OutboxRecipient.attempts + 1,
    )


async def mark_bounced(session: AsyncSession, rid: int, owner: str, reply: str) -> bool:
    return await _finish(
        session,
        rid,
        owner,
        state="bounced",
        last_reply=reply[:500],
        attempts=OutboxRecipient.attempts + 1,
    )


async def release(session: AsyncSession, rid: int, owner: str) -> bool:
    """Give a lease back without an attempt (shutdown)."""
    return await _finish(session, rid, owner)


async def list_pending(
    session: AsyncSession, limit: int = 1000
) -> Sequence[tuple[OutboxRecipient, OutboxItem]]:
    rows = await session.execute(
        select(OutboxRecipient, OutboxItem)
        .join(OutboxItem, OutboxItem.id == OutboxRecipient.outbox_id)
        .where(OutboxRecipient.state.in_(PENDING + ("held",)))
        .order_by(OutboxItem.created_at)
        .limit(limit)
    )
    return [(r, i) for r, i in rows.all()]


async def depth(session: AsyncSession) -> int:
    stmt = (
        select(func.count()).select_from(OutboxRecipient).where(OutboxRecipient.state.in_(PENDING))
    )
    return int((await session.execute(stmt)).scalar() or 0)


async def item_done(session: AsyncSession, outbox_id: str) -> bool:
    """True when no recipient of the item is still pending."""
    stmt = (
        select(func.count())
        .select_from(OutboxRecipient)
        .where(
            OutboxRecipient.outbox_id == outbox_id, OutboxRecipient.state.in_(PENDING + ("held",))
        )
    )
    return int((await session.execute(stmt)).scalar() or 0) == 0
