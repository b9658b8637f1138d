"""The write gate: one SQLite writer at a time in this process, intake first.

SQLite has one write lock per database. Left to itself, a connection that finds it taken
sleeps in SQLite's busy handler (1, 2, 5 ... 100 ms steps) and tries again, so under load
an intake commit could wait a second behind the pipeline's transactions. Queueing the
process's write transactions here instead hands the lock over the moment it is free, and
an urgent waiter (intake, which holds an SMTP client until its ``250``) goes before the
background work. Other processes still meet at SQLite's own lock (``busy_timeout``).

PostgreSQL locks rows, not the database: there the gate lets everyone through. Each
:class:`core.db.Database` holds the gate of its database (``db.write_gate``), shared by
everything in this process that writes to it.

``intake_active`` counts the messages in DATA right now; the pipeline runs one message at
a time while it is not zero, so the loop and the CPUs go to the clients waiting for ``250``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator


class WriteGate:
    """Queues this process's write transactions to one database (urgent ones first)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._held = False
        self._urgent: collections.deque[asyncio.Future[None]] = collections.deque()
        self._normal: collections.deque[asyncio.Future[None]] = collections.deque()
        self.intake_active = 0  # messages whose DATA is in progress: background work yields

    @property
    def urgent_waiting(self) -> int:
        return len(self._urgent)

    @contextlib.asynccontextmanager
    async def hold(self, urgent: bool = False) -> AsyncIterator[None]:
        """Hold the gate for one write transaction (keep it short: no fsync of objects,
        no network inside)."""
        if not self.enabled:
            yield
            return
        await self._acquire(urgent)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, urgent: bool) -> None:
        if not self._held and not self._urgent and not self._normal:
            self._held = True
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        (self._urgent if urgent else self._normal).append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._release()  # granted just as we were cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):
                    (self._urgent if urgent else self._normal).remove(waiter)
            raise

    def _release(self) -> None:
        for waiters in (self._urgent, self._normal):
            while waiters:
                waiter = waiters.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # the gate passes straight to it
                    return
        self._held = False
