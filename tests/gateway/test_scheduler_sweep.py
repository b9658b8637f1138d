"""The worker's scheduler runs the archive sweep (both databases)."""

from __future__ import annotations

from sqlalchemy import select

from archive.models import ArchiveEntry
from core.services import Services
from gateway.models import ScheduledJob
from gateway.scheduler import JOBS, run_due
from tests.archive.test_retention import archived, make_tenant


async def test_worker_sweeps_every_hour(services: Services) -> None:
    jobs = [j for j in JOBS if j.name == "archive-sweep"]
    assert len(jobs) == 1 and jobs[0].every == 3600.0
    tid = await make_tenant(services, "Acme")
    entry = await archived(services, tid, "old")
    assert await run_due(services, jobs) == ["archive-sweep"]
    assert await run_due(services, jobs) == []  # not due again for an hour
    async with services.db.session() as s:
        row = await s.get(ArchiveEntry, entry.id)
        assert row is not None and row.shredded_at is not None
        job = (await s.execute(select(ScheduledJob))).scalars().one()
        assert job.runs == 1 and job.last_error == ""
