"""One worker process started by ``sealmail serve`` (:mod:`sealmail.workers`).

``python -m sealmail.worker_process WAKE_FD PARENT_PID`` with the pickled settings on
standard input: runs :func:`gateway.worker.run_worker` until SIGTERM, SIGINT or the end of
the wake-up pipe (the parent is gone), and dies with its parent.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import pickle
import signal
import sys

from core.config.settings import Settings

PR_SET_PDEATHSIG = 1
WORKER_NICE = 10


def _die_with_parent(parent: int) -> None:
    """SIGKILL from the kernel when the parent dies (Linux); a parent already gone: exit."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        sys.exit(0)


async def run(settings: Settings, wake_fd: int) -> None:
    """The worker loop of this process, woken through ``wake_fd``."""
    from core.services import Services
    from gateway.worker import run_worker

    loop = asyncio.get_running_loop()
    stop, wakeup = asyncio.Event(), asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def readable() -> None:
        try:
            data = os.read(wake_fd, 4096)
        except BlockingIOError:
            return
        if data:
            wakeup.set()
        else:  # the parent closed its end or died: stop as on SIGTERM
            loop.remove_reader(wake_fd)
            stop.set()

    os.set_blocking(wake_fd, False)
    loop.add_reader(wake_fd, readable)
    # this loop serves no client: SQLite's statements run in its thread (core/db.py)
    services = Services.open(settings, inline_db=True)
    try:
        await run_worker(services, stop, wakeup=wakeup)
    finally:
        with contextlib.suppress(ValueError, OSError):
            loop.remove_reader(wake_fd)
        await services.close()


def main() -> None:
    wake_fd, parent = int(sys.argv[1]), int(sys.argv[2])
    _die_with_parent(parent)
    # background work: when the cores are busy the kernel favours the process holding SMTP
    # clients until their 250 and portal readers (on a 2-core machine that process uses at
    # most one core, so the workers always keep the other)
    os.nice(WORKER_NICE)
    # from the parent over a private pipe, never from anyone else
    settings = pickle.loads(sys.stdin.buffer.read())  # noqa: S301
    from sealmail.logs import setup_logging

    setup_logging(settings.log_format, settings.log_level)
    asyncio.run(run(settings, wake_fd))


if __name__ == "__main__":
    main()
