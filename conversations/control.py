"""The sender's controls over a sealed message, shared by ``/sent``, ``/admin``, the API and
``sealmail message``: revoke for one recipient or all, set the expiry, and read the
recipients' accesses. Each change takes effect at once (every page checks the access on
every request), is recorded as a message event and audited; the caller commits.
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from conversations import events
from core.audit import audit
from core.errors import NotFound
from core.models import Message, PortalAccess, now


async def message_of(session: AsyncSession, tenant_id: str | None, message_id: str) -> Message:
    """The message (of this tenant, when one is given); NotFound otherwise."""
    msg = await session.get(Message, message_id[:64])
    if msg is None or (tenant_id is not None and msg.tenant_id != tenant_id):
        raise NotFound(f"no message {message_id[:64]!r}")
    return msg


async def accesses(
    session: AsyncSession, msg: Message, recipient: str | None = None
) -> list[PortalAccess]:
    """The message's portal accesses of notified recipients (not authors' own copies),
    optionally of one address."""
    stmt = select(PortalAccess).where(
        PortalAccess.message_id == msg.id,
        PortalAccess.tenant_id == msg.tenant_id,
        PortalAccess.kind == "recipient",
    )
    if recipient:
        stmt = stmt.where(func.lower(PortalAccess.recipient) == recipient.strip().lower())
    return list((await session.execute(stmt.order_by(PortalAccess.recipient))).scalars().all())


async def revoke(
    session: AsyncSession, msg: Message, actor: str, recipient: str | None = None
) -> list[str]:
    """Revoke the portal access of ``recipient`` (or of every recipient); returns the
    addresses whose access was live and is now revoked. NotFound for a recipient who has
    no access to this message."""
    rows = await accesses(session, msg, recipient)
    if recipient and not rows:
        raise NotFound(f"{recipient} has no portal access to message {msg.id}")
    t = now()
    done: list[str] = []
    for row in rows:
        if row.revoked:
            continue
        await session.execute(
            update(PortalAccess)
            .where(PortalAccess.id == row.id)
            .values(revoked=True, revoked_at=t, revoked_by=actor)
        )
        events.record(session, msg.tenant_id, msg.id, events.REVOKED, row.recipient, actor, at=t)
        done.append(row.recipient)
    await audit(
        session,
        msg.tenant_id,
        actor,
        "message.revoked",
        msg.id,
        recipient=recipient or "*",
        revoked=done,
    )
    return done


async def set_expiry(
    session: AsyncSession, msg: Message, actor: str, expires_at: float, recipient: str | None = None
) -> list[str]:
    """Portal access of ``recipient`` (or everyone) ends at ``expires_at`` (epoch seconds;
    earlier or later than before). Revoked accesses stay revoked."""
    rows = await accesses(session, msg, recipient)
    if recipient and not rows:
        raise NotFound(f"{recipient} has no portal access to message {msg.id}")
    changed: list[str] = []
    for row in rows:
        before = row.expires_at
        await session.execute(
            update(PortalAccess).where(PortalAccess.id == row.id).values(expires_at=expires_at)
        )
        events.record(
            session,
            msg.tenant_id,
            msg.id,
            events.EXPIRY_CHANGED,
            row.recipient,
            actor,
            before=before,
            after=expires_at,
        )
        changed.append(row.recipient)
    await audit(
        session,
        msg.tenant_id,
        actor,
        "message.expiry_changed",
        msg.id,
        recipient=recipient or "*",
        expires_at=expires_at,
    )
    return changed
