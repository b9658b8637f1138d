"""The write gate: one SQLite writer at a time in this process, intake first.

SQLite has one write lock per database. Left to itself, a connection that finds it taken
sleeps in SQLite's busy handler (1, 2, 5 ... 100 ms steps) and tries again, so under load
an intake commit could wait a second behind the pipeline's transactions. Queueing the
process's write transactions here instead hands the lock over the moment it is free, and
an urgent waiter (intake, which holds an SMTP client until its ``250``) goes before the
background work.

Between processes on the same database file (``sealmail serve`` and its worker processes,
:mod:`sealmail.workers`), the holder of each process's gate also takes an exclusive
``flock`` on ``<database>.writelock``: a writer of another process waits in the kernel and
is woken the moment the lock is free, instead of sleeping in SQLite's busy handler while the
lock sits idle. The kernel drops the lock of a process that dies.

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
import fcntl
import os
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor


class WriteGate:
    """Queues this process's write transactions to one database (urgent ones first)."""

    def __init__(self, enabled: bool = True, lock_path: str | None = None) -> None:
        self.enabled = enabled
        self.lock_path = lock_path if enabled else None
        self._fd = -1
        self._locker: ThreadPoolExecutor | None = None
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
            await self._lock_file()
        except BaseException:
            self._release()
            raise
        try:
            yield
        finally:
            self._unlock_file()
            self._release()

    async def _lock_file(self) -> None:
        """The lock between processes (see the module's text); taken without a thread when
        it is free, else waited for in a thread of its own."""
        if self.lock_path is None:
            return
        if self._fd < 0:
            self._fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        if self._locker is None:
            self._locker = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writelock")
        fd = self._fd
        taken: Future[None] = self._locker.submit(fcntl.flock, fd, fcntl.LOCK_EX)
        try:
            await asyncio.wrap_future(taken)
        except asyncio.CancelledError:
            # the thread may still get the lock: give it back as soon as it does
            taken.add_done_callback(_give_back(fd))
            raise

    def _unlock_file(self) -> None:
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close the lock file (the database is being disposed of)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._locker is not None:
            self._locker.shutdown(wait=False)
            self._locker = None

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


def _give_back(fd: int) -> Callable[[Future[None]], None]:
    """A callback that unlocks ``fd`` once a cancelled wait's thread got the lock."""

    def done(taken: Future[None]) -> None:
        if taken.exception() is None:
            fcntl.flock(fd, fcntl.LOCK_UN)

    return done
