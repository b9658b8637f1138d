"""The database: SQLAlchemy 2 async engines for SQLite (default) and PostgreSQL, and Alembic.

SQLite runs in WAL mode with ``synchronous=FULL`` so that a committed transaction survives
power loss, which is what lets the gateway answer ``250`` after the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiosqlite
from sqlalchemy import event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from core.errors import ConfigError, TransientError
from core.writegate import WriteGate

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def async_url(url: str) -> str:
    """``sqlite:///x`` → ``sqlite+aiosqlite:///x``; ``postgresql://`` → ``postgresql+asyncpg://``."""
    u = make_url(url)
    backend = u.get_backend_name()
    if backend == "sqlite":
        u = u.set(drivername="sqlite+aiosqlite")
    elif backend in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+asyncpg")
    else:
        raise ConfigError(f"unsupported database {backend!r}")
    return u.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def _write_lock_path(url: str) -> str | None:
    """The file whose ``flock`` queues writers of several processes (SQLite on disk only)."""
    if not is_sqlite(url):
        return None
    path = make_url(url).database
    return f"{path}.writelock" if path and path != ":memory:" else None


class _InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection whose statements run in the caller's thread.

    aiosqlite hands every call (execute, fetch, commit, each cursor step) to its own thread
    and wakes the event loop with the result: a statement of the pipeline costs several such
    round trips, about 0.15 ms of CPU before SQLite does anything (docs/PERFORMANCE.md,
    issue 15). A process whose loop serves nobody waiting on it (a worker process: the
    pipeline and delivery) runs them inline instead; it waits for SQLite's lock only behind
    the write gate's file lock, so a statement blocks its loop for the time SQLite works.
    The connection is still opened and closed by aiosqlite's thread."""

    async def _execute(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)


def _inline_connect(database: str, **kwargs: Any) -> aiosqlite.Connection:
    def connector() -> sqlite3.Connection:
        # opened by aiosqlite's thread, used by the loop's thread afterwards
        return sqlite3.connect(database, **{**kwargs, "check_same_thread": False})

    conn = _InlineConnection(connector, 64)
    conn._thread.daemon = True
    return conn


def create_engine(url: str, inline: bool = False, **kwargs: Any) -> AsyncEngine:
    """An async engine for ``url`` (sync-style URL as in the config). ``inline``: SQLite's
    statements run in the event loop's thread (:class:`_InlineConnection`); for processes
    whose loop serves no client."""
    aurl = async_url(url)
    if is_sqlite(url):
        path = make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        args: dict[str, Any] = {"timeout": 15}
        if inline:
            args["async_creator_fn"] = _inline_connect
        engine = create_async_engine(aurl, connect_args=args, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    else:
        kwargs.setdefault("pool_pre_ping", True)
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 20)
        kwargs.setdefault("connect_args", {"timeout": 5, "command_timeout": 30})
        engine = create_async_engine(aurl, **kwargs)
    return engine


class Database:
    """An engine and its session factory. ``async with db.session() as s`` is one unit of work;
    SQLAlchemy's connection errors come out as :class:`TransientError`."""

    def __init__(self, url: str, inline: bool = False, **kwargs: Any) -> None:
        self.url = url
        self.engine = create_engine(url, inline=inline, **kwargs)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        # one writer at a time on SQLite, intake first (:mod:`core.writegate`)
        self.write_gate = WriteGate(enabled=is_sqlite(url), lock_path=_write_lock_path(url))

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        try:
            async with self.sessionmaker() as session:
                yield session
        except (exc.OperationalError, exc.InterfaceError, exc.DBAPIError, OSError) as err:
            if isinstance(err, exc.IntegrityError):
                raise
            raise TransientError(f"database unavailable: {type(err).__name__}") from err
        except (TimeoutError, ConnectionError) as err:
            raise TransientError(f"database unavailable: {type(err).__name__}") from err

    async def ping(self) -> bool:
        from sqlalchemy import text

        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:  # noqa: BLE001 - readiness answers yes or no
            return False

    async def dispose(self) -> None:
        await self.engine.dispose()
        self.write_gate.close()


def _alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


def migrate(url: str, revision: str = "head") -> None:
    """Bring the schema at ``url`` up to ``revision`` (blocking: run it in a thread)."""
    from alembic import command

    if is_sqlite(url):
        path = make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(_alembic_config(url), revision)


def current_revision(url: str) -> str | None:
    """The schema revision the database is at, or ``None`` for an empty database."""
    from alembic.runtime.migration import MigrationContext

    async def _rev() -> str | None:
        eng = create_engine(url)
        try:
            async with eng.connect() as conn:
                return await conn.run_sync(
                    lambda c: MigrationContext.configure(c).get_current_revision()
                )
        finally:
            await eng.dispose()

    return asyncio.run(_rev())
