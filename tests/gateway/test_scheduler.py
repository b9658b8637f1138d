"""The worker's scheduler: due jobs run once per period, one worker at a time, a failure
is retried sooner, a dead worker's lease runs out."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import select, update

from core.services import Services
from gateway.models import ScheduledJob
from gateway.scheduler import Job, run_due, run_scheduler


async def _row(services: Services, name: str) -> ScheduledJob:
    async with services.db.session() as s:
        row = (await s.execute(select(ScheduledJob).where(ScheduledJob.name == name))).scalar_one()
        return row


async def test_due_job_runs_once_per_period(services: Services) -> None:
    calls: list[str] = []

    async def work(svc: Services) -> None:
        calls.append("ran")

    job = Job("count", every=3600, run=work)
    assert await run_due(services, [job]) == ["count"]
    assert await run_due(services, [job]) == []  # not due again for an hour
    assert calls == ["ran"]
    row = await _row(services, "count")
    assert row.runs == 1 and row.owner == "" and row.last_error == ""
    assert row.next_run_at > time.time() + 3500


async def test_failure_is_recorded_and_retried_sooner(services: Services) -> None:
    async def broken(svc: Services) -> None:
        raise RuntimeError("store unreachable")

    job = Job("broken", every=86400, run=broken, retry=60)
    assert await run_due(services, [job]) == ["broken"]
    row = await _row(services, "broken")
    assert row.last_error == "RuntimeError: store unreachable"
    assert time.time() + 50 < row.next_run_at < time.time() + 70


async def test_two_workers_never_run_a_job_at_once(services: Services) -> None:
    running = 0
    most = 0
    runs = 0

    async def slow(svc: Services) -> None:
        nonlocal running, most, runs
        running += 1
        runs += 1
        most = max(most, running)
        await asyncio.sleep(0.2)
        running -= 1

    job = Job("slow", every=3600, run=slow)
    results = await asyncio.gather(*(run_due(services, [job], owner=f"w{i}") for i in range(4)))
    assert most == 1 and runs == 1
    assert sorted(len(r) for r in results) == [0, 0, 0, 1]


async def test_a_dead_workers_lease_runs_out(services: Services) -> None:
    calls = 0

    async def work(svc: Services) -> None:
        nonlocal calls
        calls += 1

    job = Job("taken", every=3600, run=work, lease=600)
    await run_due(services, [])  # nothing to do without jobs
    async with services.db.session() as s:
        s.add(ScheduledJob(name="taken", next_run_at=0.0, owner="otherhost:1:x"))
        await s.commit()
        await s.execute(
            update(ScheduledJob)
            .where(ScheduledJob.name == "taken")
            .values(lease_until=time.time() + 600)
        )
        await s.commit()
    assert await run_due(services, [job]) == []  # someone else holds it
    async with services.db.session() as s:
        await s.execute(
            update(ScheduledJob)
            .where(ScheduledJob.name == "taken")
            .values(lease_until=time.time() - 1)
        )
        await s.commit()
    assert await run_due(services, [job]) == ["taken"]
    assert calls == 1


async def test_run_scheduler_stops_when_asked(services: Services) -> None:
    seen = asyncio.Event()

    async def work(svc: Services) -> None:
        seen.set()

    stop = asyncio.Event()
    task = asyncio.create_task(run_scheduler(services, stop, [Job("tick", 3600, work)], tick=0.05))
    await asyncio.wait_for(seen.wait(), 10)
    stop.set()
    await asyncio.wait_for(task, 10)
