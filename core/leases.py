"""Who holds a claim, and giving back the claims of workers that died.

A worker's id is ``host:pid:random``. Claims (outbox leases, a message being processed)
run out by themselves, but a worker killed with ``kill -9`` would leave its work waiting
for the whole lease. When a worker starts it gives back the claims of workers on the same
host whose process no longer exists, so a restart after a crash resumes at once. Claims of
other hosts are left to expire: we cannot see whether those processes live.
"""

from __future__ import annotations

import os
import socket

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.ids import new_id
from core.models import Message, OutboxRecipient, now


def _host() -> str:
    return socket.gethostname()[:30].replace(":", "_")


def owner_id() -> str:
    """A new worker id: ``host:pid:random``."""
    return f"{_host()}:{os.getpid()}:{new_id(nbytes=5)}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_dead_local(owner: str) -> bool:
    """True when ``owner`` was a process on this host that no longer runs."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != _host() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    return pid != os.getpid() and not _alive(pid)


async def release_dead(session: AsyncSession) -> tuple[int, int]:
    """Give back dead local workers' outbox leases and message claims; the caller commits.
    Returns (outbox recipients, messages) released."""
    t = now()
    owners = (
        (
            await session.execute(
                select(OutboxRecipient.lease_owner)
                .where(OutboxRecipient.lease_until > t, OutboxRecipient.lease_owner.is_not(None))
                .distinct()
            )
        )
        .scalars()
        .all()
    )
    dead = [o for o in owners if o and is_dead_local(o)]
    leases = 0
    if dead:
        result = await session.execute(
            update(OutboxRecipient)
            .where(OutboxRecipient.lease_owner.in_(dead))
            .values(lease_owner=None, lease_until=0.0)
        )
        leases = int(result.rowcount or 0)  # type: ignore[attr-defined]
    claimers = (
        (
            await session.execute(
                select(Message.claimed_by)
                .where(Message.state == "received", Message.claimed_by != "")
                .distinct()
            )
        )
        .scalars()
        .all()
    )
    dead_claims = [c for c in claimers if is_dead_local(c)]
    claims = 0
    if dead_claims:
        result = await session.execute(
            update(Message)
            .where(Message.state == "received", Message.claimed_by.in_(dead_claims))
            .values(claimed_by="", next_attempt_at=t)
        )
        claims = int(result.rowcount or 0)  # type: ignore[attr-defined]
    return leases, claims
