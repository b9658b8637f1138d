"""Worker processes beside ``sealmail serve``: the pipeline and delivery on every core.

One Python process runs on one core at a time, so with ``worker_processes`` above one
``sealmail serve`` (roles ``all`` and ``worker``) starts that many processes that run only
the worker loop (:func:`gateway.worker.run_worker`) on the same database and store, and
keeps its own loop for SMTP clients, the portal and the scheduler. They are ordinary
workers: each claims with its own lease owner (``host:pid:random``), so the crash and
lease guarantees are those of several workers on one host. On SQLite their write
transactions queue at the write gate's lock file (:mod:`core.writegate`).

- **Settings**: the child gets the parent's validated :class:`Settings` on its standard
  input (pickled), so it runs with exactly the configuration the parent was started with.
- **Wake-up**: intake sets a :class:`FanOutEvent`; besides waking the worker in its own
  process it writes one byte to a pipe per child, which wakes that child's loop at once.
- **Dying with the parent**: a child asks the kernel for SIGKILL when its parent dies
  (``PR_SET_PDEATHSIG``), and stops by itself when the pipe reaches end of file; a parent
  killed with SIGKILL therefore takes its workers with it, as a single process would.
- **Stopping**: SIGTERM to the parent sends SIGTERM to every child, which drains as
  ``serve`` does (open deliveries finish, claims are given back) and exits 0.
- **A child that dies** on its own is started again after a second, and said in the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import subprocess
import sys

from core.config.settings import Settings

log = logging.getLogger("sealmail.serve")

RESTART_DELAY = 1.0


def process_count(settings: Settings) -> int:
    """How many processes run the worker: the setting, or one per core when it is 0."""
    return settings.worker_processes or max(1, os.cpu_count() or 1)


class FanOutEvent(asyncio.Event):
    """An :class:`asyncio.Event` whose ``set`` also wakes the worker processes."""

    def __init__(self) -> None:
        super().__init__()
        self.pipes: list[int] = []

    def set(self) -> None:
        super().set()
        for fd in self.pipes:
            # a full pipe already holds a wake-up; a closed one belongs to a dead child
            with contextlib.suppress(OSError):
                os.write(fd, b"!")


class _Child:
    def __init__(self, index: int) -> None:
        self.index = index
        self.proc: subprocess.Popen[bytes] | None = None
        self.pipe = -1


class WorkerProcesses:
    """The extra worker processes of one ``sealmail serve``."""

    def __init__(self, settings: Settings, count: int, wakeup: FanOutEvent) -> None:
        self.settings = settings
        self.wakeup = wakeup
        self.children = [_Child(i) for i in range(count)]
        self._stopping = False
        self._watch: asyncio.Task[None] | None = None

    @property
    def pids(self) -> list[int]:
        return [c.proc.pid for c in self.children if c.proc is not None]

    def _spawn(self, child: _Child) -> None:
        read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "sealmail.worker_process", str(read_end), str(os.getpid())],
                stdin=subprocess.PIPE,
                pass_fds=(read_end,),
            )
        finally:
            os.close(read_end)
        assert proc.stdin is not None
        proc.stdin.write(pickle.dumps(self.settings))
        proc.stdin.close()
        if child.pipe >= 0:
            with contextlib.suppress(OSError):
                self.wakeup.pipes.remove(child.pipe)
            os.close(child.pipe)
        child.proc, child.pipe = proc, write_end
        self.wakeup.pipes.append(write_end)

    def start(self) -> None:
        """Start every child and the watch that restarts one that dies."""
        for child in self.children:
            self._spawn(child)
        self._watch = asyncio.create_task(self._restart_dead(), name="worker-processes")

    async def _restart_dead(self) -> None:
        while not self._stopping:
            await asyncio.sleep(RESTART_DELAY)
            for child in self.children:
                proc = child.proc
                if self._stopping or proc is None or proc.poll() is None:
                    continue
                log.error(
                    "worker process %d (pid %d) stopped with exit status %s; starting it again",
                    child.index + 1,
                    proc.pid,
                    proc.returncode,
                )
                self._spawn(child)

    def terminate(self) -> None:
        """SIGTERM to every child (they stop taking work at once, as the worker of a single
        process does when ``serve`` begins to stop) and no more restarts."""
        self._stopping = True
        if self._watch is not None:
            self._watch.cancel()
        for child in self.children:
            if child.proc is not None and child.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    child.proc.send_signal(signal.SIGTERM)

    async def stop(self, grace: float = 30.0) -> None:
        """:meth:`terminate`, then wait for every child (SIGKILL after ``grace`` seconds)."""
        self.terminate()
        for child in self.children:
            proc = child.proc
            if proc is None:
                continue
            try:
                await asyncio.to_thread(proc.wait, grace)
            except subprocess.TimeoutExpired:
                log.error("worker process %d did not stop in %.0f s; killed", proc.pid, grace)
                proc.kill()
                await asyncio.to_thread(proc.wait)
        for child in self.children:
            if child.pipe >= 0:
                with contextlib.suppress(OSError):
                    os.close(child.pipe)
                child.pipe = -1
        self.wakeup.pipes.clear()
