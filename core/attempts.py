"""Attempt limits that hold under concurrency and across processes: a try at a secret is
counted in ``attempt_counters`` *before* the secret is checked, by a conditional
``UPDATE ... SET tries = tries + 1 WHERE key = ? AND tries < limit``; only a caller whose
statement changed the row may check. Parallel tries cannot all slip under the limit, as
they do when a count is read first and compared afterwards.

A counter counts tries in a fixed window that starts at its first try; when the window has
passed, the next try starts a new one. A right secret may give its try back
(:func:`give_back`), so only failures keep counting.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import case, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import CursorResult

from core.db import Database
from core.models import AttemptCounter, now

_MAX_KEY = 120


async def claim(
    db: Database, counters: list[tuple[str, int]], window: float, urgent: bool = False
) -> bool:
    """Count one try against every ``(key, limit)``, or against none when one is full
    (then False: do not check the secret). Committed before it returns. ``urgent``: a
    client is waiting in a dialogue (SMTP AUTH): queue with intake at the write gate, not
    behind it."""
    t = now()
    insert = sqlite_insert if db.is_sqlite else pg_insert
    async with db.write_gate.hold(urgent=urgent), db.session() as s:
        for key, limit in counters:
            key = key[:_MAX_KEY]
            await s.execute(
                insert(AttemptCounter)
                .values(key=key, tries=0, window_start=t)
                .on_conflict_do_nothing(index_elements=["key"])
            )
            expired = AttemptCounter.window_start <= t - window
            result = cast(
                CursorResult[Any],
                await s.execute(
                    update(AttemptCounter)
                    .where(AttemptCounter.key == key, (AttemptCounter.tries < limit) | expired)
                    .values(
                        tries=case((expired, 1), else_=AttemptCounter.tries + 1),
                        window_start=case((expired, t), else_=AttemptCounter.window_start),
                    )
                ),
            )
            if result.rowcount != 1:
                await s.rollback()  # the other counters give their try back
                return False
        await s.commit()
    return True


async def give_back(db: Database, keys: list[str], urgent: bool = False) -> None:
    """The secret was right: its try does not count against these keys."""
    async with db.write_gate.hold(urgent=urgent), db.session() as s:
        for key in keys:
            await s.execute(
                update(AttemptCounter)
                .where(AttemptCounter.key == key[:_MAX_KEY], AttemptCounter.tries > 0)
                .values(tries=AttemptCounter.tries - 1)
            )
        await s.commit()
