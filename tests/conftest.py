"""Shared fixtures: every storage test runs on SQLite and on PostgreSQL.

PostgreSQL: 127.0.0.1:5432, user postgres (override with SEALMAIL_TEST_PG). The schema is
migrated once into a template database; each test gets its own copy, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from core.config.loading import load_settings
from core.config.settings import Settings
from core.db import migrate
from core.rootkey.file_root import FileRootKey
from core.services import Services
from tests.helpers import processes
from tests.helpers.moto_server import MotoServer
from tests.helpers.processes import _nothing_outlives_its_test  # noqa: F401 - autouse, every test

PG_BASE = os.environ.get("SEALMAIL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_admin_url() -> str:
    return PG_BASE


async def _pg_exec(sql: str) -> None:
    import asyncpg

    dsn = _pg_admin_url().replace("postgresql://", "postgres://", 1)
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _pg_url(dbname: str) -> str:
    return PG_BASE.rsplit("/", 1)[0] + "/" + dbname


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated template database for the session."""
    name = f"sealmail_tmpl_{secrets.token_hex(4)}"
    try:
        asyncio.run(_pg_exec(f'CREATE DATABASE "{name}"'))
    except (OSError, Exception) as exc:  # noqa: BLE001
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    migrate(_pg_url(name))
    yield name
    asyncio.run(_pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database of each kind, private to the test."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/sealmail.db"
        migrate(url)
        yield url
        return
    template = request.getfixturevalue("pg_template")
    name = f"sealmail_t_{secrets.token_hex(6)}"
    asyncio.run(_pg_exec(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield _pg_url(name)
    finally:
        asyncio.run(_pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def make_settings(tmp_path: Path, db_url: str, **overrides: object) -> Settings:
    """Settings for a test: everything under ``tmp_path``, a fresh root key."""
    data = tmp_path / "var"
    (data / "keys").mkdir(parents=True, exist_ok=True)
    FileRootKey.create(data / "keys" / "root.key")
    values: dict[str, object] = {
        "data_dir": str(data),
        "database_url": db_url,
        "archive_url": f"file://{data}/archive",
        "root_key": f"file://{data}/keys/root.key",
        "queue_min_backoff": "1s",
        "queue_max_backoff": "4s",
        "queue_poll_interval": "0.1s",
    }
    values.update(overrides)
    return load_settings(path=None, env={}, overrides=values)


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return make_settings(tmp_path, db_url)


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    svc = Services.open(settings)
    yield svc
    await svc.close()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """One moto server (S3 and KMS on loopback) for the whole run; tests that stop or break
    it start their own ``MotoServer`` instead. AWS_* credentials for the standard chain are
    set for this process and the processes it starts."""
    for k, v in MotoServer.ENV.items():
        os.environ.setdefault(k, v)
    with MotoServer() as server:
        processes.lives_for_session(server.pid)
        yield server


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Whatever a session-scoped fixture left running (its test already ended) is stopped."""
    left = processes.stop_everything()
    if left:
        print(f"\nstopped at the end of the session, still running: {'; '.join(left)}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Where the browser tests left their screenshots (CI keeps that folder as artifacts)."""
    from tests.helpers.pages import artifacts_dir

    shots = artifacts_dir() / "screenshots"
    if shots.is_dir() and any(shots.rglob("*.png")):
        terminalreporter.write_line(f"screenshots of the pages: {shots}")
