"""End-to-end fixtures: ``sealmail`` run as a subprocess on loopback ports, exactly as a user
runs it (``sealmail init``, ``sealmail tenant create``, ``sealmail serve``)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import processes
from tests.helpers.smtp_sink import SmtpSink, free_port

SEALMAIL = [sys.executable, "-m", "sealmail"]


def run_cli(*args: str, config: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*SEALMAIL, "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"sealmail {' '.join(args)} failed: {proc.stderr}")
    return proc


def _wait_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port} after {timeout}s")


class Product:
    """A working directory and the ``sealmail serve`` process running on it.

    Every instance is remembered until the end of its test, when the autouse fixture
    :func:`_no_server_outlives_its_test` stops whatever is still running, whether the test
    passed, failed or timed out."""

    live: list[Product] = []

    def __init__(self, root: Path, relay_port: int) -> None:
        Product.live.append(self)
        self.root = root
        self.smtp_port = free_port()
        self.portal_port = free_port()
        self.relay_port = relay_port
        self.config = root / "sealmail.toml"
        self.log_path = root / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = None

    @property
    def portal_url(self) -> str:
        return f"http://127.0.0.1:{self.portal_port}"

    def init(self, **extra: str | None) -> None:
        subprocess.run(
            [*SEALMAIL, "init", "--dir", str(self.root)],
            check=True,
            capture_output=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        values = {
            "smtp_listen": f"127.0.0.1:{self.smtp_port}",
            "portal_listen": f"127.0.0.1:{self.portal_port}",
            "portal_base_url": self.portal_url,
            "relay": f"127.0.0.1:{self.relay_port}",
            "relay_tls": "none",
            "queue_min_backoff": "1s",
            "queue_max_backoff": "2s",
            "queue_poll_interval": "0.2s",
            # One process: these tests are about features, and each extra worker process costs
            # every start of `serve` its own interpreter (seconds of CPU over the suite). The
            # default (one worker process per core) is run by test_worker_processes and by the
            # reliability tests (tests/reliability), which start `serve` on its defaults.
            "worker_processes": "1",
            **extra,
        }
        # a key given as None is left out (a previous version may not know it)
        lines = [f"{k} = {json.dumps(v)}" for k, v in values.items() if v is not None]
        text = self.config.read_text()
        keys = {line.split("=", 1)[0].strip() for line in lines}
        kept = [ln for ln in text.splitlines() if ln.split("=", 1)[0].strip() not in keys]
        self.config.write_text("\n".join(kept + lines) + "\n")

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, config=self.config, check=check)

    def create_tenant(self, name: str, domain: str) -> dict[str, str]:
        return json.loads(self.cli("tenant", "create", name, "--domain", domain, "--json").stdout)

    def start(self, env: dict[str, str] | None = None) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop()  # never two servers on one directory, never one left behind
        self._log = self.log_path.open("ab")
        self.proc = processes.start(
            [*SEALMAIL, "--config", str(self.config), "serve"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
        _wait_port(self.smtp_port)
        _wait_port(self.portal_port)

    def kill(self) -> None:
        assert self.proc is not None
        processes.stop_group(self.proc, signal.SIGKILL)
        self.proc = None

    def stop(self) -> int:
        if self.proc is None:
            return 0
        # the group: whatever serve started (a gpg it runs) goes with it
        code = processes.stop_group(self.proc, signal.SIGTERM, timeout=60)
        self.proc = None
        if self._log:
            self._log.close()
        return code

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture(autouse=True)
def _no_server_outlives_its_test() -> Iterator[None]:
    """Stop every ``sealmail serve`` a test started and did not stop (a test that builds its
    own :class:`Product` included), and say so: a server left running holds its ports and
    keeps working on a deleted directory long after the run."""
    Product.live.clear()
    yield
    for p in Product.live:
        if p.proc is not None:
            p.stop()
    Product.live.clear()


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as s:
        yield s


@pytest.fixture
def product(tmp_path: Path, sink: SmtpSink) -> Iterator[Product]:
    p = Product(tmp_path / "sealmail", sink.port)
    p.init()
    yield p
    p.stop()
