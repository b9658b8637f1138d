"""Page views reach the audit log in batches, off the request path: within a second by
themselves, at close what is left, each with the time of the view; rows the database could
not take are kept and written later (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from core.models import AuditEvent, now
from core.services import Services
from portal import view_log
from portal.view_log import ViewLog


async def _rows(services: Services) -> list[AuditEvent]:
    async with services.db.session() as s:
        stmt = select(AuditEvent).where(AuditEvent.action == "portal.message.viewed")
        return list((await s.execute(stmt)).scalars().all())


async def test_views_are_written_within_a_second_and_at_close(services: Services) -> None:
    views = ViewLog(services)
    before = now()
    views.viewed("t1", "reader@partner.example", "portal.message.viewed", "m1")
    views.viewed("t1", "reader@partner.example", "portal.message.viewed", "m2")
    assert await _rows(services) == []  # not in the request's way
    for _ in range(40):
        if len(await _rows(services)) == 2:
            break
        await asyncio.sleep(0.05)
    rows = await _rows(services)
    assert sorted(r.subject_id for r in rows) == ["m1", "m2"]
    assert all(before <= r.at <= before + 1 for r in rows)  # the time of the view

    views.viewed("t2", "other@partner.example", "portal.message.viewed", "m3")
    await views.close()  # the portal stops: what is left is written now
    assert sorted(r.subject_id for r in await _rows(services)) == ["m1", "m2", "m3"]
    assert {r.tenant_id for r in await _rows(services)} == {"t1", "t2"}


async def test_rows_the_database_refused_are_kept(services: Services, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(view_log, "INTERVAL", 0.01)
    views = ViewLog(services)
    real = services.db.session
    calls = {"n": 0}

    def failing_once():  # noqa: ANN202
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("database away")
        return real()

    monkeypatch.setattr(services.db, "session", failing_once)
    views._rows.append(
        AuditEvent(
            tenant_id="t1", actor="a", action="portal.message.viewed", subject_id="m9", at=now()
        )
    )
    assert await views.flush() == 0  # refused: kept
    assert await views.flush() == 1
    assert [r.subject_id for r in await _rows(services)] == ["m9"]
