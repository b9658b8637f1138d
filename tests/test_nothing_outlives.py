"""The leak check itself (tests/helpers/processes.py): a test that leaves a process running,
a process group, a GnuPG home's agent or a watched directory errs, even when it timed out, and what
it left is gone afterwards; a test that stops what it starts passes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import processes

ROOT = Path(__file__).resolve().parents[1]

INNER = """
import os, subprocess, sys, time
from pathlib import Path
import pytest
from tests.helpers import processes

PIDS = Path(os.environ["LEAK_PIDS"])
SLEEP = [sys.executable, "-c", "import time; time.sleep(120)"]


def note(pid):
    with PIDS.open("a") as f:
        f.write(f"{pid}\\n")


def test_leaves_a_child():
    note(subprocess.Popen(SLEEP).pid)


def test_leaves_a_grandchild_in_its_group():
    # the leader exits at once; its child stays in the group (and is no child of pytest)
    code = "import subprocess, sys; p = subprocess.Popen(%r); print(p.pid)" % (SLEEP,)
    leader = processes.start([sys.executable, "-c", code], stdout=subprocess.PIPE)
    note(int(leader.stdout.readline()))
    leader.wait()


def test_times_out_with_a_child():
    note(subprocess.Popen(SLEEP).pid)
    time.sleep(30)


@pytest.mark.parametrize("n", [1, 2])
def test_stops_what_it_starts(n):
    p = processes.start(SLEEP)
    note(p.pid)
    processes.stop_group(p)


def test_fails_but_its_fixture_stops_the_child(child):
    assert False, "a failing test"


@pytest.fixture
def child():
    p = processes.start(SLEEP)
    note(p.pid)
    yield p
    processes.stop_group(p)


def test_leaves_a_gpg_agent(tmp_path):
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    processes.watch_gpg_home(home)
    subprocess.run(
        ["gpg-connect-agent", "--homedir", str(home), "/bye"],
        check=True, capture_output=True, timeout=30,
    )
    note(processes._agents_of(str(home))[0])


def test_leaves_a_watched_directory(tmp_path_factory):
    d = Path(os.environ["LEAK_DIR"])
    d.mkdir()
    processes.watch(f"directory {d}", d.exists, d.rmdir)
"""


def _alive(pid: int) -> bool:
    state = processes._state(pid)
    return state is not None and state != "Z"


@pytest.mark.timeout(120)
def test_a_test_that_leaves_a_process_running_errs(tmp_path: Path) -> None:
    (tmp_path / "test_inner.py").write_text(INNER)
    pids = tmp_path / "pids"
    pids.touch()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "LEAK_PIDS": str(pids),
        "LEAK_DIR": str(tmp_path / "outside"),
        "COLUMNS": "300",  # the summary lines whole
    }
    started = time.monotonic()
    inner = processes.start(
        [
            sys.executable, "-m", "pytest", "-p", "tests.helpers.processes",
            "-p", "no:cacheprovider", "-o", "timeout_method=signal",
            "--timeout", "2", "-rA", "-q", "test_inner.py",
        ],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        out, _ = inner.communicate(timeout=100)
    finally:
        processes.stop_group(inner, signal.SIGKILL)
    text = out.decode(errors="replace")
    elapsed = time.monotonic() - started
    noted = [int(p) for p in pids.read_text().split()]
    try:
        assert inner.returncode == 1, text
        for name in (
            "test_leaves_a_child",
            "test_leaves_a_grandchild_in_its_group",
            "test_times_out_with_a_child",
            "test_leaves_a_gpg_agent",
            "test_leaves_a_watched_directory",
        ):
            assert f"ERROR test_inner.py::{name} - Failed: test_inner.py::{name} left" in text
        assert "FAILED test_inner.py::test_times_out_with_a_child - Failed: Timeout" in text
        assert "PASSED test_inner.py::test_stops_what_it_starts[1]" in text
        assert "PASSED test_inner.py::test_stops_what_it_starts[2]" in text
        assert "FAILED test_inner.py::test_fails_but_its_fixture_stops_the_child" in text
        assert "ERROR test_inner.py::test_fails_but" not in text
        assert "time.sleep(120)" in text  # the error names what was left
        assert "left 1 running (stopped now): gpg-agent on " in text
        assert len(noted) == 7, noted
        assert not [p for p in noted if _alive(p)], "the check left processes running"
        assert not (tmp_path / "outside").exists()
        assert elapsed < 60
    finally:
        for pid in noted:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.timeout(30)
def test_the_check_costs_little_per_test() -> None:
    """One snapshot and one comparison, as every test pays them: well under 2 ms."""
    rounds = 200
    started = time.perf_counter()
    for _ in range(rounds):
        with processes.nothing_outlives("nothing"):
            pass
    per_test = (time.perf_counter() - started) / rounds
    assert per_test < 0.002, f"{per_test * 1000:.2f} ms per test"
