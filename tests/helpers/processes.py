"""Processes the tests start: each in a process group of its own, stopped as a group, and a
check that fails the test that leaves one running.

:func:`start` is how a test or fixture starts a long-running process (a ``sealmail serve``,
moto's server): ``start_new_session=True``, so :func:`stop_group` reaches what it started
too. The autouse fixture :func:`_nothing_outlives_its_test` (imported by ``tests/conftest.py``;
``-p tests.helpers.processes`` for another test directory) compares this process's
children before and after each test, and the groups started through :func:`start` during
it: whatever still runs is killed as a group and the test errs at teardown, naming it. Its
cost is one read of ``/proc/self/task/*/children`` per test (tens of microseconds).
Processes that live for the whole session (the shared moto server) are registered with
:func:`lives_for_session`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

_groups: list[int] = []  # process groups started through start(), oldest first
_session_pids: set[int] = set()
# what no parent-child link shows: a daemon that detached (pg_ctl's postgres), a directory
# outside tmp_path; (what, still there?, take it away)
_watched: list[tuple[str, Callable[[], bool], Callable[[], None]]] = []


def start(args: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen(args, ...)`` in a new session (its own process group), remembered
    for the leak check."""
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    proc: subprocess.Popen[bytes] = subprocess.Popen(args, start_new_session=True, **kwargs)
    _groups.append(proc.pid)
    return proc


def lives_for_session(pid: int) -> None:
    """``pid`` belongs to a session-scoped fixture: not a leak of the test that started it."""
    _session_pids.add(pid)


def watch(what: str, alive: Callable[[], bool], stop: Callable[[], None]) -> None:
    """Something a test starts that is not its child (a daemon, a directory outside
    ``tmp_path``): the leak check calls ``alive()`` at the end of the test, and ``stop()``
    when it is still there."""
    _watched.append((what, alive, stop))


def _agents_of(home: str) -> list[int]:
    """gpg-agent (or another gpg daemon) processes running on GnuPG home ``home``: they
    detach, so only their command line (``--homedir <home>``) ties them to a test."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and b"gpg" in os.path.basename(argv[0]) and home.encode() in argv:
            found.append(int(name))
    return found


def watch_gpg_home(home: os.PathLike[str] | str) -> None:
    """A GnuPG home a test made: no gpg-agent of it may outlive the test (``gpgconf --kill
    all`` at the end otherwise)."""
    path = os.fspath(home)

    def stop() -> None:
        subprocess.run(
            ["gpgconf", "--homedir", path, "--kill", "all"],
            capture_output=True,
            check=False,
            timeout=30,
        )
        for pid in _agents_of(path):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    watch(f"gpg-agent on {path}", lambda: bool(_agents_of(path)), stop)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_group(
    proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30.0
) -> int:
    """Send ``sig`` to the process group of ``proc`` (started by :func:`start`), wait up to
    ``timeout`` for the leader, then SIGKILL whatever of the group is left; the exit code."""
    pgid = proc.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        code = proc.wait(timeout=30)
    kill_group(pgid)
    return code


def kill_group(pgid: int) -> None:
    """SIGKILL every process of group ``pgid`` (what is left of it) and wait until it is gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while group_alive(pgid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pgid, os.WNOHANG)
        time.sleep(0.01)


def _state(pid: int) -> str | None:
    """The one-letter state of ``pid`` (``Z`` for a zombie), None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rindex(b")") + 2 :][:1].decode()


def children() -> set[int]:
    """The running (not zombie) children of this process, every thread's."""
    found: set[int] = set()
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/children") as f:
                found.update(int(p) for p in f.read().split())
        except OSError:
            continue
    return {pid for pid in found if _state(pid) not in (None, "Z")}


def describe(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        cmd = "?"
    return f"pid {pid}: {cmd[:200]}"


def _leaks(before: set[int], groups_before: int) -> list[int]:
    """Process groups (or lone children) started since the snapshot and still running."""
    found = [pid for pid in sorted(children() - before) if pid not in _session_pids]
    for pgid in _groups[groups_before:]:
        if pgid not in found and pgid not in _session_pids and group_alive(pgid):
            found.append(pgid)
    return found


def _left_watched(watched_before: int) -> list[str]:
    left = []
    for what, alive, stop in _watched[watched_before:]:
        if alive():
            left.append(what)
            with contextlib.suppress(Exception):
                stop()
    del _watched[watched_before:]
    return left


@contextlib.contextmanager
def nothing_outlives(what: str) -> Iterator[None]:
    """Fail (after killing them) if processes started inside the block still run at its end."""
    before = children()
    groups_before, watched_before = len(_groups), len(_watched)
    yield
    leaks = _leaks(before, groups_before)
    left = _left_watched(watched_before)
    if not leaks and not left:
        del _groups[groups_before:]
        return
    named = [describe(pid) for pid in leaks] + left
    for pid in leaks:
        try:
            pgid = os.getpgid(pid)
        except ProcessLookupError:
            pgid = pid
        if pgid == os.getpgid(0):  # a plain child in pytest's own group: only itself
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        else:
            kill_group(pgid)
    del _groups[groups_before:]
    pytest.fail(f"{what} left {len(named)} running (stopped now): " + "; ".join(named))


def stop_everything() -> list[str]:
    """At the end of the session: stop every group and watched thing still there."""
    named = []
    for pgid in _groups:
        if group_alive(pgid):
            named.append(describe(pgid))
            kill_group(pgid)
    _groups.clear()
    named += _left_watched(0)
    return named


@pytest.fixture(autouse=True)
def _nothing_outlives_its_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every process a test (and its function-scoped fixtures) started is gone when it ends,
    whether it passed, failed or timed out (pytest-timeout's ``signal`` method runs
    teardown); otherwise the test errs at teardown, naming what was left."""
    with nothing_outlives(request.node.nodeid):
        yield
