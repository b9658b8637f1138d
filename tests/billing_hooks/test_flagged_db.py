"""A delinquent account in the database (both databases): flagged on the 5th of its third
seriously late month, its next invoice charges the secondary source named in the outbound
webhook, and unpaid at the end of the 3rd it is suspended before the 5th's late fee."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

from sqlalchemy import select

from billing_hooks.models import Invoice, OutboundWebhook, PaymentMethod
from billing_hooks.run import run_day
from core.db import Database
from core.models import BillingAccount
from tests.conftest import make_settings

D = datetime.date


async def test_flagged_account_in_the_database(tmp_path: Path, db_url: str) -> None:
    settings = make_settings(tmp_path, db_url)
    db = Database(db_url)
    try:
        async with db.session() as s:
            s.add(BillingAccount(id="ba_1", external_id="acct_1", kind="tenant", name="Late Co"))
            await s.flush()
            for m in (1, 2, 3, 4):
                s.add(
                    Invoice(
                        id=f"in_{m}",
                        external_id=f"inv_{m}",
                        account_id="ba_1",
                        due_on=D(2027, m, 1),
                    )
                )
            await s.commit()

        async def pay(invoice_id: str, on: datetime.date) -> None:
            async with db.session() as s:
                inv = await s.get(Invoice, invoice_id)
                assert inv is not None
                inv.status, inv.paid_on = "paid", on
                await s.commit()

        got: dict[str, list[str]] = {}

        async def run(day: datetime.date) -> None:
            done = await run_day(db, settings, day)
            if done:
                got[day.isoformat()] = sorted(f"{a['action']}:{a['invoice']}" for a in done)

        day = D(2027, 1, 1)
        while day <= D(2027, 4, 6):
            for m in (1, 2, 3):
                if day == D(2027, m, 9):
                    await pay(f"in_{m}", day)
            if day == D(2027, 3, 20):
                async with db.session() as s:
                    s.add(
                        PaymentMethod(
                            id="pm_1", external_id="pm_sec", account_id="ba_1", role="secondary"
                        )
                    )
                    await s.commit()
            await run(day)
            day += datetime.timedelta(days=1)

        async with db.session() as s:
            account = await s.get(BillingAccount, "ba_1")
            assert account is not None
            flags = (
                account.delinquent,
                account.delinquent_year,
                account.standing,
                account.standing_reason,
            )
            hooks: list[Any] = [
                (w.type, json.loads(w.payload)["data"])
                for w in (await s.execute(select(OutboundWebhook))).scalars()
            ]
    finally:
        await db.dispose()

    assert got == {
        "2027-01-01": ["contact.phone_followup:inv_1", "ticket.open:inv_1"],
        "2027-01-05": ["fee.late:inv_1"],
        "2027-02-01": ["contact.phone_followup:inv_2", "ticket.open:inv_2"],
        "2027-02-05": ["fee.late:inv_2"],
        "2027-03-01": ["contact.phone_followup:inv_3", "ticket.open:inv_3"],
        "2027-03-05": ["account.flag_delinquent:", "fee.late:inv_3", "secondary.request:"],
        "2027-04-01": [
            "charge.secondary:inv_4",
            "contact.phone_followup:inv_4",
            "ticket.open:inv_4",
        ],
        "2027-04-03": ["service.suspend:inv_4"],
        "2027-04-05": ["fee.late:inv_4"],
    }
    assert flags == (True, 2027, "suspended", "billing")
    charge = [d for t, d in hooks if t == "charge.secondary"]
    assert len(charge) == 1 and charge[0]["payment_method"] == "pm_sec"
    assert charge[0]["invoice"]["id"] == "inv_4"
