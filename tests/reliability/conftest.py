"""Fixtures for the reliability tests: a private PostgreSQL (tests here stop it or lean on
it hard, never the machine's shared server) and ``sealmail serve --role ...`` processes."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import SEALMAIL, _wait_port
from tests.e2e.conftest import (  # noqa: F401 - stops every Product a test left running
    _no_server_outlives_its_test as _no_server_outlives_its_test,
)
from tests.e2e.conftest import sink as sink  # noqa: F401 - the capturing relay
from tests.helpers import processes
from tests.helpers.private_pg import PrivatePostgres, private_postgres


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    with private_postgres() as pg:
        yield pg


class RoleProcess:
    """One ``sealmail serve --role <role>`` process with its own log and environment."""

    def __init__(
        self,
        config: Path,
        role: str,
        log: Path,
        env: dict[str, str],
        hostname: str | None = None,
    ) -> None:
        """``hostname``: run it in a UTS namespace of its own with that host name (as a
        worker on another machine: its claims are not given back by this host's workers)."""
        self.role = role
        self.log_path = log
        self._log = log.open("ab")
        prefix: list[str] = []
        if hostname is not None:
            prefix = ["unshare", "--uts", "sh", "-c", f'hostname {hostname} && exec "$@"', "sh"]
        self.proc = processes.start(
            [*prefix, *SEALMAIL, "--config", str(config), "serve", "--role", role],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
        )

    def wait_ready(self, port: int | None = None, timeout: float = 30.0) -> None:
        if port is not None:
            _wait_port(port, timeout)
            return
        deadline = time.monotonic() + timeout
        while b"sealmail is running" not in self.log_path.read_bytes():
            assert self.proc.poll() is None, self.logs()
            assert time.monotonic() < deadline, f"{self.role} did not start: {self.logs()}"
            time.sleep(0.1)

    def stop(self) -> int:
        processes.stop_group(self.proc, signal.SIGTERM, timeout=60)
        self._log.close()
        return self.proc.returncode

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")
