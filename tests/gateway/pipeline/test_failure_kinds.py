"""A failed pass is retried by its kind: our outage within seconds (no attempt counted,
whatever ``queue_min_backoff`` says), a content error a few times quickly and then bounced
with a DSN naming the reason. On both databases, through real SMTP in and a real sink out."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import select

from core import outbox
from core.config.settings import Settings
from core.models import Message, OutboxRecipient, now
from gateway.delivery import drain
from gateway.pipeline import runner
from gateway.worker import run_once
from tests.conftest import make_settings
from tests.gateway.conftest import Sink, asend, make_message, write_self_signed

DB_LOST = sa_exc.OperationalError("SELECT 1", {}, ConnectionRefusedError(111, "Connection refused"))


@pytest.fixture
def gw_settings(tmp_path: Path, db_url: str, sink: Sink) -> Settings:
    """The gateway's settings with the default backoff (300 s): a retry that comes within
    seconds here can only be the outage rule."""
    cert, key = write_self_signed(tmp_path / "tls")
    return make_settings(
        tmp_path,
        db_url,
        smtp_listen="127.0.0.1:0",
        smtp_hostname="gw.test",
        smtp_tls_cert=cert,
        smtp_tls_key=key,
        relay=f"127.0.0.1:{sink.port}",
        relay_tls="none",
        portal_base_url="https://portal.test",
        queue_min_backoff="300s",
        queue_max_backoff="4000s",
    )


async def _send(gateway, tenant, subject: str = "hello") -> str:  # noqa: ANN001
    result = await asend(
        gateway,
        make_message(subject=subject),
        "alice@acme.example",
        ["bob@partner.example"],
        login=(tenant.username, tenant.password),
    )
    assert result == {}


async def _message(services) -> Message:  # noqa: ANN001
    async with services.db.session() as s:
        return (await s.execute(select(Message))).scalar_one()


@pytest.mark.timeout(60)
async def test_pass_failed_with_the_database_is_retried_within_seconds(
    gateway, tenant, gw_services, sink
):
    """CI found it: a pass that failed with the database, recorded once the database was
    back, waited queue_min_backoff (5 minutes) for an outage that was ours."""
    await _send(gateway, tenant)
    ((mid, lease),) = await runner._claim(gw_services, 10, "worker-1")
    state = runner.PipelineState()
    state.unrecorded[mid] = (lease, DB_LOST)  # the database was down when the pass failed
    assert await runner.process_pending(gw_services, state=state) == 0  # recorded, not due
    m = await _message(gw_services)
    assert not state.unrecorded
    assert m.state == "received" and m.attempts == 0 and m.claimed_by == ""
    assert m.last_error == "outage: OperationalError"
    assert m.next_attempt_at <= now() + 3.5  # not queue_min_backoff (300 s)
    deadline = time.monotonic() + 10
    while (await _message(gw_services)).state == "received" and time.monotonic() < deadline:
        await run_once(gw_services)
        await asyncio.sleep(0.2)
    assert (await _message(gw_services)).state == "processed"
    assert len(await sink.wait_for(1)) == 1


@pytest.mark.timeout(60)
async def test_delivery_deferred_by_our_outage_is_due_within_seconds(
    gateway, tenant, gw_services, sink
):
    await _send(gateway, tenant)
    ((mid, lease),) = await runner._claim(gw_services, 10, "worker-1")
    await runner._process(gw_services, mid, lease)  # a clear copy in the outbox
    async with gw_services.db.session() as s:
        claimed = await outbox.claim_due(s, "deliverer", 10, 60, False)
        await s.commit()
    assert len(claimed) == 1
    await drain._defer(gw_services, "deliverer", claimed, "451 4.3.0 local error", outage=True)
    async with gw_services.db.session() as s:
        r = (await s.execute(select(OutboxRecipient))).scalar_one()
    assert r.state == "deferred" and r.attempts == 0 and r.next_attempt_at <= now() + 3.5
    # anything else on our side keeps the usual backoff
    async with gw_services.db.session() as s:
        r = (await s.execute(select(OutboxRecipient))).scalar_one()
        r.next_attempt_at = 0
        await s.commit()
    async with gw_services.db.session() as s:
        claimed = await outbox.claim_due(s, "deliverer", 10, 60, False)
        await s.commit()
    await drain._defer(gw_services, "deliverer", claimed, "451 4.3.0 local error", outage=False)
    async with gw_services.db.session() as s:
        r = (await s.execute(select(OutboxRecipient))).scalar_one()
    assert r.attempts == 1 and r.next_attempt_at >= now() + 200
