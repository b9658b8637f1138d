"""A payment arriving while the day's run is suspending the same account (PostgreSQL, where
both really run at once): the run locks the account row, so the ``invoice.paid`` waits for
it and then reinstates; without the lock the run, working from what it read before the
payment, suspended an account whose invoice was already paid (until a later run)."""

from __future__ import annotations

import asyncio
import datetime
import json
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from billing_hooks import events, run
from billing_hooks.models import Invoice
from core.db import Database
from core.ids import new_id
from core.models import BillingAccount
from tests.conftest import make_settings


async def test_payment_racing_the_run_never_leaves_a_paid_account_suspended(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite runs one writer at a time: the run and the payment cannot overlap")
    settings = make_settings(tmp_path, db_url, billing_webhook_secret="whsec_race_0123456789")
    db = Database(db_url)
    due = datetime.date.today() - datetime.timedelta(days=30)
    body = json.dumps(
        {
            "id": "evt_pay_race",
            "type": "invoice.paid",
            "created": int(time.time()),
            "data": {"account": "acct_race", "invoice": "in_race"},
        }
    ).encode()
    try:
        async with db.session() as s:
            account = BillingAccount(id="ba_race", external_id="acct_race", kind="tenant")
            account.name, account.plan, account.standing = "Race", "paid", "good"
            s.add(account)
            await s.flush()
            s.add(
                Invoice(id=new_id("in_"), external_id="in_race", account_id="ba_race", due_on=due)
            )
            await s.commit()

        real_take = run.take
        payment: list[asyncio.Task[Any]] = []

        async def take_after_the_payment_arrived(*args: Any, **kwargs: Any) -> Any:
            if not payment:
                # the billing system's invoice.paid comes in now, between the run's reading
                # of the account and its writing of the suspension
                payment.append(asyncio.ensure_future(events.handle(db, settings, body)))
                await asyncio.wait(payment, timeout=1.0)
            return await real_take(*args, **kwargs)

        monkeypatch.setattr(run, "take", take_after_the_payment_arrived)
        done = await run.run_day(db, settings, due + datetime.timedelta(days=15))
        assert "service.suspend" in [a["action"] for a in done]
        result = await asyncio.wait_for(payment[0], timeout=30)
        assert result.status == 200 and result.body["status"] == "applied"
        async with db.session() as s:
            acct = (await s.execute(select(BillingAccount))).scalar_one()
            inv = (await s.execute(select(Invoice))).scalar_one()
            assert inv.status == "paid"
            assert (acct.standing, acct.standing_reason) == ("good", "")
    finally:
        await db.dispose()
