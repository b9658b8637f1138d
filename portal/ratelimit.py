"""Sliding-window rate limits kept in the database (``RateEvent``), so that they hold
across portal processes and restarts."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import now
from portal.models import RateEvent

HOUR = 3600.0


async def count(session: AsyncSession, bucket: str, window: float) -> int:
    stmt = (
        select(func.count())
        .select_from(RateEvent)
        .where(RateEvent.bucket == bucket, RateEvent.at > now() - window)
    )
    return int((await session.execute(stmt)).scalar() or 0)


async def exceeded(session: AsyncSession, limits: list[tuple[str, int]], window: float) -> bool:
    """True if any ``(bucket, limit)`` already holds ``limit`` events in the window."""
    for bucket, limit in limits:
        if await count(session, bucket, window) >= limit:
            return True
    return False


async def record(session: AsyncSession, buckets: list[str], window: float) -> None:
    """Add one event to each bucket and forget that bucket's events older than the window."""
    t = now()
    for bucket in buckets:
        await session.execute(
            delete(RateEvent).where(RateEvent.bucket == bucket, RateEvent.at <= t - window)
        )
        session.add(RateEvent(bucket=bucket, at=t))
