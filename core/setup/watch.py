"""Recording what the gateway sees for a tenant's open check, cheaply.

Every process keeps a tiny cache of "tenants with an open check" per database, refreshed
at most every :data:`REFRESH_SECONDS`: the mail of a tenant without a check costs a dict
lookup, never a query per message. Only for a tenant whose check is open does a step cost
a short write transaction. The callers (intake, the pipeline, delivery) wrap these calls so
that a failure here is logged and ignored: a check never stops or slows mail.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from dataclasses import dataclass

from sqlalchemy import select

from core.db import Database
from core.models import now
from core.setup import checks
from core.setup.models import SetupCheck

REFRESH_SECONDS = 1.5


@dataclass(frozen=True)
class OpenCheck:
    id: str
    tenant_id: str
    message_id: str
    expires_at: float


class Watch:
    """The open checks of one database as this process last read them."""

    def __init__(self, refresh: float = REFRESH_SECONDS) -> None:
        self.refresh = refresh
        self._read_at = -1e18
        self._open: dict[str, OpenCheck] = {}
        self._lock = asyncio.Lock()

    def stale(self) -> None:
        """Read again at the next call (after this process changed a check)."""
        self._read_at = -1e18

    def surely_none(self) -> bool:
        """No check is open as of a read within the refresh interval: a caller may skip
        even the (cheap) await."""
        return not self._open and time.monotonic() - self._read_at < self.refresh

    async def open_checks(self, db: Database) -> dict[str, OpenCheck]:
        if time.monotonic() - self._read_at < self.refresh:
            return self._open
        async with self._lock:
            if time.monotonic() - self._read_at < self.refresh:
                return self._open
            t = now()
            try:
                async with db.session() as s:
                    rows = (
                        await s.execute(
                            select(
                                SetupCheck.id,
                                SetupCheck.tenant_id,
                                SetupCheck.message_id,
                                SetupCheck.expires_at,
                            ).where(SetupCheck.finished_at.is_(None), SetupCheck.expires_at > t)
                        )
                    ).all()
                self._open = {r[1]: OpenCheck(r[0], r[1], r[2], r[3]) for r in rows}
            finally:
                # a failed read is not retried by every message either: once per refresh
                self._read_at = time.monotonic()
            return self._open


_WATCHES: weakref.WeakKeyDictionary[Database, Watch] = weakref.WeakKeyDictionary()


def watch_of(db: Database) -> Watch:
    """This process's cache for ``db`` (made at first use)."""
    w = _WATCHES.get(db)
    if w is None:
        w = _WATCHES[db] = Watch()
    return w


async def open_check_of(db: Database, tenant_id: str) -> OpenCheck | None:
    """The tenant's open check as the cache knows it (no query unless it is stale)."""
    return (await watch_of(db).open_checks(db)).get(tenant_id)


async def any_open(db: Database) -> bool:
    return bool(await watch_of(db).open_checks(db))


async def record_message(
    db: Database,
    tenant_id: str,
    message_id: str,
    steps: list[tuple[str, bool, str]],
    *,
    claim: bool = False,
    finish: str = "",
) -> bool:
    """Add ``steps`` about ``message_id`` to the tenant's open check: with ``claim`` the
    message becomes the watched one when the check has none yet; otherwise the steps are
    kept only when it is the watched message. True when written."""
    open_check = await open_check_of(db, tenant_id)
    if open_check is None:
        return False
    if open_check.message_id and open_check.message_id != message_id:
        return False
    async with db.write_gate.hold(urgent=claim), db.session() as s:
        if claim:
            if not await checks.claim_message(s, open_check.id, message_id):
                return False
        else:
            row = await s.get(SetupCheck, open_check.id)
            if row is None or row.message_id != message_id:
                return False
        written = await checks.add_steps(s, open_check.id, steps, finish=finish)
        await s.commit()
    if claim or finish:
        watch_of(db).stale()
    return written


async def record_fault(db: Database, tenant_id: str, steps: list[tuple[str, bool, str]]) -> bool:
    """A refused session attributed to the tenant: its open check ends as ``fault``, unless
    it is already watching an accepted message (that one's outcome decides)."""
    open_check = await open_check_of(db, tenant_id)
    if open_check is None or open_check.message_id:
        return False
    async with db.write_gate.hold(), db.session() as s:
        row = await s.get(SetupCheck, open_check.id)
        if row is None or row.message_id:
            return False
        written = await checks.add_steps(s, open_check.id, steps, finish=checks.FAULT)
        await s.commit()
    watch_of(db).stale()
    return written
