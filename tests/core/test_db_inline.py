"""``Database(url, inline=True)``: SQLite's statements run in the event loop's thread (the
worker processes' database), with the same results, errors and transactions as through
aiosqlite's thread."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, exc, text

from core.db import Database


def _with_thread_function(db: Database) -> None:
    def register(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.create_function("thread_id", 0, threading.get_ident)

    event.listen(db.engine.sync_engine, "connect", register)


async def _thread_of_statements(db: Database) -> int:
    async with db.session() as s:
        return int((await s.execute(text("SELECT thread_id()"))).scalar_one())


@pytest.mark.parametrize("inline", [True, False])
async def test_statements_run_in_the_loop_thread_only_when_inline(
    tmp_path: Path, inline: bool
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}", inline=inline)
    _with_thread_function(db)
    try:
        ran_in = await _thread_of_statements(db)
    finally:
        await db.dispose()
    assert (ran_in == threading.get_ident()) is inline


async def test_inline_writes_commit_roll_back_and_fail_like_the_threaded_driver(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    inline, threaded = Database(url, inline=True), Database(url)
    try:
        async with inline.session() as s:
            await s.execute(text("CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT NOT NULL)"))
            await s.execute(text("INSERT INTO t VALUES ('a', 'one')"))
            await s.commit()
        async with inline.session() as s:
            await s.execute(text("INSERT INTO t VALUES ('b', 'two')"))
            await s.rollback()
        async with inline.session() as s:
            await s.execute(text("INSERT INTO t VALUES ('c', 'three')"))
            with pytest.raises(exc.IntegrityError):
                await s.execute(text("INSERT INTO t VALUES ('a', 'again')"))
            await s.rollback()
        # the connection is still good after the error
        async with inline.session() as s:
            await s.execute(text("INSERT INTO t VALUES ('d', 'four')"))
            await s.commit()
        # another connection (aiosqlite's thread) sees exactly the committed rows
        async with threaded.session() as s:
            rows = (await s.execute(text("SELECT k, v FROM t ORDER BY k"))).all()
        assert [tuple(r) for r in rows] == [("a", "one"), ("d", "four")]
    finally:
        await inline.dispose()
        await threaded.dispose()
