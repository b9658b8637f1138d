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

from core.dkim.sign import UNSIGNED_KINDS, sign_outgoing
from core.ids import queue_id
from core.line_length import fit_line_length
from core.models import OutboxItem, OutboxRecipient, now
from core.storage.vault import Vault

PENDING = ("queued", "deferred")
KINDS = ("clear", "encrypted", "notification", "pdf", "code", "dsn", "sender", "account")
# pdf: a recipient's notice of method pdf (the encrypted PDF attached, or why it is not)
# sender: mail to a message's sender about it (an "opened" receipt, a request for a new copy)
# account: mail to a tenant's user about their account (an invitation)


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
    warned_at: float | None = None
    require_tls: bool = False


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
    """Add an item for an object already sealed; the caller commits (in the same
    transaction as what caused it). Mail to send goes through :func:`post`, which seals
    and then calls this; nothing else in the project queues by hand."""
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


async def post(
    session: AsyncSession,
    vault: Vault,
    *,
    kind: str,
    tenant_id: str,
    mail_from: str,
    recipients: Iterable[str],
    raw: bytes | Iterable[bytes],
    lifetime: float,
    message_id: str | None = None,
    require_tls: bool = False,
) -> OutboxItem:
    """Every mail sealmail sends, in one step: seal ``raw`` under the tenant's keys (nothing
    waits in the queue in clear) and queue it for ``recipients``. Notifications, one-time
    codes, DSNs and notices, billing and support mail, and the copies the pipeline relays
    all come through here. The caller commits, in the same transaction as what caused it;
    ``require_tls`` makes delivery send it only over verified TLS. An unknown ``kind`` is
    refused before anything is sealed. A body line over 998 octets (accepted at intake)
    is re-encoded here, so no copy leaves with one (:mod:`core.line_length`). Mail sealmail
    writes is then DKIM-signed for the tenant's From domain when it has an active key
    (:mod:`core.dkim.sign`; the tenant's relayed messages never are).

    ``raw`` may be an iterable of chunks (a large message's copy, never held whole): it is
    consumed in the thread that seals it, comes with its lines already fitted by its
    writer (:mod:`gateway.pipeline.large_copy`) and, as relayed mail, is never signed."""
    if kind not in KINDS:
        raise ValueError(f"unknown outbox kind {kind!r}")
    if isinstance(raw, bytes | bytearray):
        raw = fit_line_length(bytes(raw))
        raw = await sign_outgoing(session, vault.keyring, tenant_id, kind, raw)
    elif kind not in UNSIGNED_KINDS:
        raise ValueError(f"a {kind} mail is written whole (it may be signed)")
    sealed = await vault.seal(session, tenant_id, raw, kind="outbound")
    item = await enqueue(
        session,
        kind=kind,
        tenant_id=tenant_id,
        mail_from=mail_from,
        recipients=recipients,
        object_id=sealed.id,
        lifetime=lifetime,
        message_id=message_id,
    )
    item.require_tls = require_tls
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
    if ids:  # one statement: a row another worker leased meanwhile is not taken
        result = await session.execute(
            update(OutboxRecipient)
            .where(OutboxRecipient.id.in_(ids), OutboxRecipient.lease_until < t)
            .values(lease_owner=owner, lease_until=t + lease_seconds)
            .returning(OutboxRecipient.id)
            .execution_options(synchronize_session=False)
        )
        won = sorted(result.scalars().all())
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
            warned_at=r.warned_at,
            require_tls=bool(i.require_tls),
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
    session: AsyncSession,
    rid: int,
    owner: str,
    reply: str,
    next_attempt_at: float,
    *,
    count: bool = True,
) -> bool:
    """Try again at ``next_attempt_at``; ``count=False`` when the failure was our own
    outage (the attempt does not lengthen the recipient's backoff)."""
    attempts = OutboxRecipient.attempts + 1 if count else OutboxRecipient.attempts
    return await _finish(
        session,
        rid,
        owner,
        state="deferred",
        last_reply=reply[:500],
        next_attempt_at=next_attempt_at,
        attempts=attempts,
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


# --- operator actions (``sealmail queue``) and delay warnings -------------------------------
#
# Hold: pending recipients of an item become ``held``; delivery never claims them, and a
# held recipient never expires (nothing bounces while an operator holds it). On release
# they are queued and due at once; an item already past its lifetime gets one more
# ``grace`` period so the released mail is tried before it bounces.
# A recipient leased by a worker is being sent right now: hold and retry leave it alone.


async def get_item(
    session: AsyncSession, outbox_id: str
) -> tuple[OutboxItem, list[OutboxRecipient]] | None:
    item = await session.get(OutboxItem, outbox_id)
    if item is None:
        return None
    rows = await session.execute(
        select(OutboxRecipient)
        .where(OutboxRecipient.outbox_id == outbox_id)
        .order_by(OutboxRecipient.id)
    )
    return item, list(rows.scalars().all())


async def items_of_message(session: AsyncSession, message_id: str) -> list[OutboxItem]:
    rows = await session.execute(
        select(OutboxItem)
        .where(OutboxItem.message_id == message_id)
        .order_by(OutboxItem.created_at, OutboxItem.id)
    )
    return list(rows.scalars().all())


async def _change(
    session: AsyncSession,
    outbox_ids: Sequence[str] | None,
    states: Iterable[str],
    *,
    not_due: bool = False,
    **values: object,
) -> int:
    t = now()
    stmt = update(OutboxRecipient).where(
        OutboxRecipient.state.in_(tuple(states)), OutboxRecipient.lease_until < t
    )
    if not_due:
        stmt = stmt.where(OutboxRecipient.next_attempt_at > t)
    if outbox_ids is not None:
        stmt = stmt.where(OutboxRecipient.outbox_id.in_(list(outbox_ids)))
    result = cast(CursorResult[Any], await session.execute(stmt.values(updated_at=t, **values)))
    return int(result.rowcount or 0)


async def retry_now(session: AsyncSession, outbox_ids: Sequence[str] | None) -> int:
    """Make deferred recipients that wait for a later try due now (``None``: the whole
    queue); returns how many."""
    return await _change(session, outbox_ids, ("deferred",), not_due=True, next_attempt_at=now())


async def hold(session: AsyncSession, outbox_ids: Sequence[str]) -> int:
    """Pending recipients become ``held``: delivery skips them and they do not expire."""
    return await _change(session, outbox_ids, PENDING, state="held")


async def release_held(session: AsyncSession, outbox_ids: Sequence[str], grace: float) -> int:
    """Held recipients are queued and due now; an expired item gets ``grace`` seconds."""
    t = now()
    count = await _change(session, outbox_ids, ("held",), state="queued", next_attempt_at=t)
    if count:
        await session.execute(
            update(OutboxItem)
            .where(OutboxItem.id.in_(list(outbox_ids)), OutboxItem.expires_at < t + grace)
            .values(expires_at=t + grace)
        )
    return count


async def mark_warned(session: AsyncSession, rid: int) -> bool:
    """Record that the sender was told this recipient is delayed; True only the first time,
    so a delay warning goes once per recipient even with several workers."""
    result = cast(
        CursorResult[Any],
        await session.execute(
            update(OutboxRecipient)
            .where(OutboxRecipient.id == rid, OutboxRecipient.warned_at.is_(None))
            .values(warned_at=now())
        ),
    )
    return result.rowcount == 1


def wants_warning(claimed: Claimed, after: float, at: float) -> bool:
    """A delay warning is due: enabled, not sent before, old enough, and never for a DSN
    or for mail with the null sender (no report about a report)."""
    return (
        after > 0
        and claimed.warned_at is None
        and claimed.kind != "dsn"
        and bool(claimed.mail_from)
        and at - claimed.created_at >= after
    )
