"""The worker's billing jobs through the scheduler (both databases): the dunning day for the
last day that is over, and the delivery of signed outbound webhooks."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from sqlalchemy import select

from billing_hooks.models import Invoice, OutboundWebhook
from billing_hooks.signing import verify
from core.accounts.tenants import create_tenant
from core.ids import new_id
from core.models import BillingAccount, Tenant
from core.services import Services
from gateway.models import ScheduledJob
from gateway.scheduler import JOBS, run_due
from tests.billing_hooks.test_outbound import OUT_SECRET, Receiver
from tests.conftest import make_settings


async def test_worker_runs_the_billing_day_and_sends_webhooks(tmp_path: Path, db_url: str) -> None:
    receiver = Receiver(fail_first=0)
    receiver.thread.start()
    settings = make_settings(
        tmp_path, db_url, billing_outbound_url=receiver.url, billing_outbound_secret=OUT_SECRET
    )
    services = Services.open(settings)
    try:
        jobs = {j.name: j for j in JOBS if j.name.startswith("billing-")}
        assert set(jobs) == {"billing-day", "billing-webhooks"}
        yesterday = datetime.datetime.now(datetime.UTC).date() - datetime.timedelta(days=1)
        async with services.db.session() as s:
            creds = await create_tenant(s, services.keyring, "Acme", ["acme.example"])
            account = BillingAccount(
                id=new_id("ba_"), external_id="acct_1", kind="tenant", tenant_id=creds.tenant_id
            )
            account.name, account.plan, account.standing = "Acme", "paid", "good"
            s.add(account)
            await s.flush()
            s.add(
                Invoice(
                    id=new_id("in_"),
                    external_id="in_1",
                    account_id=account.id,
                    due_on=yesterday - datetime.timedelta(days=14),  # 15 days unpaid
                )
            )
            await s.commit()

        assert await run_due(services, [jobs["billing-day"]]) == ["billing-day"]
        assert await run_due(services, [jobs["billing-day"]]) == []  # hourly
        async with services.db.session() as s:
            tenant = await s.get(Tenant, creds.tenant_id)
            assert tenant is not None and tenant.standing == "suspended"
            types = [w.type for w in (await s.execute(select(OutboundWebhook))).scalars()]
            assert sorted(types) == [
                "contact.phone_followup",
                "fee.late",
                "service.suspend",
                "ticket.open",
            ]
            job = await s.get(ScheduledJob, "billing-day")
            assert job is not None and job.last_error == "" and job.runs == 1

        assert await run_due(services, [jobs["billing-webhooks"]]) == ["billing-webhooks"]
        received = sorted(json.loads(body)["type"] for _, body in receiver.requests)
        assert received == sorted(types)
        for header, body in receiver.requests:
            verify(header, body, OUT_SECRET)
        async with services.db.session() as s:
            pending = (
                await s.execute(
                    select(OutboundWebhook).where(OutboundWebhook.delivered_at.is_(None))
                )
            ).all()
            assert pending == []
    finally:
        await services.close()
        receiver.server.shutdown()
        receiver.server.server_close()
