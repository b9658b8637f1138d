"""The worker's scheduler: periodic jobs such as the archive sweep and the billing day.

Each job has a row in ``scheduled_jobs``. A worker runs a job only after taking that row's
lease with one conditional ``UPDATE`` (due, and no live lease), so with several workers on
one database a job runs in one of them at a time, and a worker killed in the middle of a
run leaves a lease that simply runs out. After a run the next one is due ``every`` seconds
later; after a failure it is tried again sooner (``retry``). Jobs must be idempotent: a
run cut short by a crash is run again in full.

To add a job, append a :class:`Job` to :data:`JOBS` (the modules that do the work live in
``archive`` and ``billing_hooks``; this module only decides when).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from core.leases import owner_id
from core.services import Services
from gateway.models import ScheduledJob

log = logging.getLogger("sealmail.scheduler")


@dataclasses.dataclass(frozen=True)
class Job:
    name: str
    every: float  # seconds between the end of one run and the start of the next
    run: Callable[[Services], Awaitable[object]]
    lease: float = 3600.0  # a run longer than this may be taken over by another worker
    retry: float = 300.0  # after a failure, try again this much later (at most ``every``)


# The jobs every worker runs. Modules add theirs here, each with a name of its own.
JOBS: list[Job] = []


async def _ensure_rows(services: Services, jobs: Sequence[Job]) -> None:
    async with services.db.write_gate.hold(), services.db.session() as s:
        for job in jobs:
            if await s.get(ScheduledJob, job.name) is None:
                s.add(ScheduledJob(name=job.name, next_run_at=0.0))
        try:
            await s.commit()
        except IntegrityError:  # another worker inserted them first
            await s.rollback()


async def _claim(services: Services, job: Job, owner: str, now: float) -> bool:
    async with services.db.write_gate.hold(), services.db.session() as s:
        result = await s.execute(
            update(ScheduledJob)
            .where(
                ScheduledJob.name == job.name,
                ScheduledJob.next_run_at <= now,
                ScheduledJob.lease_until < now,
            )
            .values(owner=owner, lease_until=now + job.lease, last_started_at=now)
        )
        await s.commit()
        return bool(result.rowcount)  # type: ignore[attr-defined]


async def _finish(services: Services, job: Job, owner: str, error: str) -> None:
    now = time.time()
    delay = min(job.retry, job.every) if error else job.every
    async with services.db.write_gate.hold(), services.db.session() as s:
        await s.execute(
            update(ScheduledJob)
            .where(ScheduledJob.name == job.name, ScheduledJob.owner == owner)
            .values(
                owner="",
                lease_until=0.0,
                next_run_at=now + delay,
                last_finished_at=now,
                last_error=error[:500],
                runs=ScheduledJob.runs + 1,
            )
        )
        await s.commit()


async def run_due(
    services: Services, jobs: Sequence[Job] | None = None, owner: str | None = None
) -> list[str]:
    """Run, one after the other, every job that is due and not running elsewhere.
    Returns the names of the jobs this call ran (failed runs included)."""
    jobs = JOBS if jobs is None else jobs
    owner = owner or owner_id()
    if not jobs:
        return []
    await _ensure_rows(services, jobs)
    ran: list[str] = []
    for job in jobs:
        if not await _claim(services, job, owner, time.time()):
            continue
        ran.append(job.name)
        error = ""
        started = time.monotonic()
        try:
            await job.run(services)
        except asyncio.CancelledError:
            # stopping: give the lease back so the next worker starts the job at once
            await asyncio.shield(_finish(services, dataclasses.replace(job, every=0), owner, ""))
            raise
        except Exception as exc:  # noqa: BLE001 - a failing job must not stop the others
            error = f"{type(exc).__name__}: {exc}"
            log.error("scheduled job %s failed: %s", job.name, error)
        else:
            log.info("scheduled job %s done in %.1f s", job.name, time.monotonic() - started)
        await _finish(services, job, owner, error)
    return ran


async def run_scheduler(
    services: Services,
    stop: asyncio.Event,
    jobs: Sequence[Job] | None = None,
    tick: float = 30.0,
) -> None:
    """Check for due jobs every ``tick`` seconds until ``stop`` is set."""
    owner = owner_id()
    while not stop.is_set():
        try:
            await run_due(services, jobs, owner)
        except Exception as exc:  # noqa: BLE001 - the database may be down: try next tick
            log.warning("scheduler round failed: %s", type(exc).__name__)
        try:
            await asyncio.wait_for(stop.wait(), timeout=tick)
        except TimeoutError:
            pass


# --- archive retention (issue 5): shred what has outlived its retention, every hour -----------


async def _archive_sweep(services: Services) -> object:
    from archive.sweep import sweep

    return await sweep(services)


JOBS.append(Job("archive-sweep", every=3600.0, run=_archive_sweep))


# --- billing (issue 6): the dunning day (hourly; a day is taken once) and the outbound webhooks


async def _billing_day(services: Services) -> object:
    from billing_hooks.run import default_day, run_day
    from branding.billing_mail import billing_mailer

    settings = services.settings
    return await run_day(
        services.db, settings, default_day(settings), mailer=billing_mailer(services)
    )


async def _billing_webhooks(services: Services) -> object:
    from billing_hooks.outbound import deliver_due

    return await deliver_due(services.settings, services.db)


JOBS.append(Job("billing-day", every=3600.0, run=_billing_day))
JOBS.append(Job("billing-webhooks", every=60.0, run=_billing_webhooks, lease=600.0, retry=60.0))


# --- partners (issue 14): reminders before and after a trial's last day, hourly -----------------


async def _trial_reminders(services: Services) -> object:
    from branding.partner_mail import send_trial_reminders

    return await send_trial_reminders(services)


JOBS.append(Job("trial-reminders", every=3600.0, run=_trial_reminders))


# --- the evidence log (issue 16): new entries chained, checkpoints signed, every minute ----


async def _evidence_chain(services: Services) -> object:
    from core.evidence.log import chain_all

    return await chain_all(services)


JOBS.append(Job("evidence-chain", every=60.0, run=_evidence_chain, lease=600.0, retry=60.0))
