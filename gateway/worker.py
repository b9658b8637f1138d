"""The worker: rounds of the pipeline (received messages) then delivery (the outbox) until
told to stop, waking at once when intake queues a message. Each worker keeps its own lease
owner and its own memory between rounds (:class:`PipelineState`, :class:`DeliveryState`)."""

from __future__ import annotations

import asyncio
import logging

from core.leases import owner_id, release_dead
from core.services import Services
from gateway.delivery.drain import deliver_due
from gateway.delivery.nexthop import NextHops
from gateway.delivery.outcomes import DeliveryState
from gateway.pipeline.runner import PipelineState, process_pending

log = logging.getLogger("sealmail.gateway.delivery")


def worker_id() -> str:
    """A new worker's lease owner (``host:pid:random``)."""
    return owner_id()


async def _idle(stop: asyncio.Event, wakeup: asyncio.Event | None, seconds: float) -> None:
    waits = [asyncio.ensure_future(stop.wait())]
    if wakeup is not None:
        waits.append(asyncio.ensure_future(wakeup.wait()))
    _, pending = await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()


async def run_worker(
    services: Services, stop: asyncio.Event, wakeup: asyncio.Event | None = None
) -> None:
    """Process received messages and drain the outbox until ``stop`` is set; wakes at
    once on ``wakeup`` (set by intake), else every ``queue_poll_interval``."""
    owner = worker_id()
    pool = NextHops(services.settings, size=services.settings.delivery_concurrency)
    pipeline_state, delivery_state = PipelineState(), DeliveryState()
    try:
        await _recover(services)
        while not stop.is_set():
            if wakeup is not None:
                wakeup.clear()
            try:
                done = await process_pending(services, state=pipeline_state)
                done += await deliver_due(services, pool, owner, stop, state=delivery_state)
            except Exception as exc:  # noqa: BLE001 - keep going; the next round retries
                log.error("worker round failed: %s", exc)
                done = 0
            if not done:
                await _idle(stop, wakeup, services.settings.queue_poll_interval)
    finally:
        await pool.close()
        from gateway.pipeline.crypto.pgp import stop_agents

        await stop_agents(services.settings.data_dir)


async def _recover(services: Services) -> None:
    """Resume at once what a worker killed on this host had claimed."""
    try:
        async with services.db.write_gate.hold(), services.db.session() as s:
            leases, claims = await release_dead(s)
            await s.commit()
    except Exception as exc:  # noqa: BLE001 - the claims still run out by themselves
        log.warning("could not give back dead workers' claims: %s", type(exc).__name__)
        return
    if leases or claims:
        log.info("resumed %d deliveries and %d messages of a stopped worker", leases, claims)


async def run_once(services: Services) -> int:
    """One round (for tests and ``sealmail queue`` tools): process, then deliver."""
    pool = NextHops(services.settings, size=services.settings.delivery_concurrency)
    try:
        done = await process_pending(services)
        done += await deliver_due(services, pool, worker_id())
        return done
    finally:
        await pool.close()
