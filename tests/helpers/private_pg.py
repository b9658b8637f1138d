"""A private PostgreSQL instance for tests that stop or break the database (never the
machine's shared server): ``initdb`` + ``pg_ctl`` on a free loopback port."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.helpers import processes
from tests.helpers.smtp_sink import free_port


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} not found (install postgresql)")
    return path


class PrivatePostgres:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="sealmail-privpg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.dir, "postgres")
        # pg_ctl's postgres detaches (no child of ours) and the directory is outside
        # tmp_path (the postgres user must reach it): the leak check watches both
        processes.watch(f"private PostgreSQL in {self.dir}", self.dir.exists, self.cleanup)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        cmd = ["runuser", "-u", "postgres", "--", *args] if self.as_postgres else list(args)
        subprocess.run(cmd, check=True, capture_output=True, timeout=120, stdin=subprocess.DEVNULL)

    def init(self) -> PrivatePostgres:
        self._run(_bin("initdb"), "-A", "trust", "-U", "postgres", "-D", str(self.data))
        return self

    def start(self) -> None:
        self._run(
            _bin("pg_ctl"),
            "-s",
            "-w",
            "-D",
            str(self.data),
            "-l",
            str(self.dir / "log"),
            "-o",
            f"-h 127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off",
            "start",
        )

    def stop(self, mode: str = "immediate") -> None:
        self._run(_bin("pg_ctl"), "-s", "-w", "-D", str(self.data), "-m", mode, "stop")

    def cleanup(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self.stop("fast")
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
                with contextlib.suppress(subprocess.SubprocessError):
                    self.stop("immediate")
        time.sleep(0.1)
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A started private PostgreSQL, stopped and removed at the end of the block, whether
    the block (or the start itself) failed or not."""
    pg = PrivatePostgres()
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        pg.cleanup()
