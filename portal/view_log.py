"""Audit rows of page views, written in batches off the request path.

Every time a recipient reads a conversation the audit log gets a ``portal.message.viewed``
row. Written in the request's own transaction, each view was a write transaction of its own
(on SQLite one fsync, queued at the write gate behind every other writer), which set the
page's p99 under concurrent readers. The rows are kept here with the time of the view and
written together every :data:`INTERVAL` seconds in one transaction, and at shutdown. The
first opening of a message (its receipt, its ``opened`` event) is not deferred: it is
written before the page answers (:mod:`portal.reader.receipts`).

What a crash of the process can cost: the views of the last :data:`INTERVAL` seconds.
Rows the database cannot take yet are kept and tried again (at most :data:`KEEP` rows).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from core.models import AuditEvent, now
from core.services import Services

log = logging.getLogger("sealmail.portal")

INTERVAL = 0.5  # seconds between two writes
KEEP = 50_000  # rows kept while the database is away; older ones beyond this are dropped


class ViewLog:
    """Collects view rows and writes them in batches (one task per portal process)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._rows: list[AuditEvent] = []
        self._task: asyncio.Task[None] | None = None

    def viewed(self, tenant_id: str, actor: str, action: str, subject_id: str) -> None:
        """Keep one audit row, stamped now; written within :data:`INTERVAL` seconds."""
        self._rows.append(
            AuditEvent(
                tenant_id=tenant_id, actor=actor, action=action, subject_id=subject_id, at=now()
            )
        )
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="portal-view-log")

    async def _run(self) -> None:
        while self._rows:
            await asyncio.sleep(INTERVAL)
            await self.flush()

    async def flush(self) -> int:
        """Write what is kept now, in one transaction; returns how many rows were written."""
        rows, self._rows = self._rows, []
        if not rows:
            return 0
        db = self.services.db
        try:
            async with db.write_gate.hold(), db.session() as s:
                s.add_all(rows)
                await s.commit()
        except Exception as exc:  # noqa: BLE001 - kept and tried again at the next write
            log.warning("portal: %d view rows not written yet: %s", len(rows), exc)
            self._rows = [*rows, *self._rows][-KEEP:]
            await asyncio.sleep(INTERVAL)
            return 0
        return len(rows)

    async def close(self) -> None:
        """Stop the task and write what is left (the portal is stopping)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.flush()
