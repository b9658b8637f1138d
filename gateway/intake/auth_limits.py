"""SMTP AUTH tries limited across sessions and processes, per client address and per
username, in the database (``smtp_auth_failures``), like Postfix's anvil or Dovecot's auth
penalty but shared by every ``sealmail serve`` on one database.

A try is counted *before* the password is checked, by a conditional ``UPDATE ... WHERE
tries < limit``, so parallel sessions cannot all slip under the limit; only when both the
address's and the username's counters took the try is the password checked. A right
password gives its try back (a success never resets another address's counter). Over the
limit the client gets ``454 4.7.0`` and the password is not checked at all, so a right one
is refused too until the window has passed. Unknown usernames are counted the same way, so
the replies never tell whether a username exists.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import case, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import CursorResult

from core.db import Database
from core.hashing import sha256_hex
from core.models import now
from gateway.models import AuthFailureCount

WINDOW = 15 * 60.0  # seconds a try counts for
MAX_PER_ADDRESS = 10  # tries per client address in the window
MAX_PER_USERNAME = 10  # tries per username in the window


def keys(client_ip: str, username: str) -> list[tuple[str, int]]:
    """The counters one AUTH try counts against, with their limits."""
    return [
        (f"ip:{client_ip}"[:80], MAX_PER_ADDRESS),
        (f"user:{sha256_hex(username.strip().lower())}", MAX_PER_USERNAME),
    ]


async def claim(db: Database, counters: list[tuple[str, int]]) -> bool:
    """Count one try against every counter, or against none when one is full (then False:
    do not check the password). Committed before it returns."""
    t = now()
    insert = sqlite_insert if db.is_sqlite else pg_insert
    async with db.write_gate.hold(), db.session() as s:
        for key, limit in counters:
            await s.execute(
                insert(AuthFailureCount)
                .values(key=key, tries=0, window_start=t)
                .on_conflict_do_nothing(index_elements=["key"])
            )
            expired = AuthFailureCount.window_start <= t - WINDOW
            result = cast(
                CursorResult[Any],
                await s.execute(
                    update(AuthFailureCount)
                    .where(
                        AuthFailureCount.key == key,
                        (AuthFailureCount.tries < limit) | expired,
                    )
                    .values(
                        tries=case((expired, 1), else_=AuthFailureCount.tries + 1),
                        window_start=case((expired, t), else_=AuthFailureCount.window_start),
                    )
                ),
            )
            if result.rowcount != 1:
                await s.rollback()  # the other counters give their try back
                return False
        await s.commit()
    return True


async def give_back(db: Database, counters: list[tuple[str, int]]) -> None:
    """The password was right: its try does not count against these counters."""
    async with db.write_gate.hold(), db.session() as s:
        for key, _limit in counters:
            await s.execute(
                update(AuthFailureCount)
                .where(AuthFailureCount.key == key, AuthFailureCount.tries > 0)
                .values(tries=AuthFailureCount.tries - 1)
            )
        await s.commit()
