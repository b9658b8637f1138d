"""Two workers running the same billing day at the same time take each action once (both
databases): the unique key of ``dunning_actions`` decides, the loser rolls back."""

from __future__ import annotations

import asyncio
import datetime
from collections import Counter
from pathlib import Path

from sqlalchemy import select

from billing_hooks.models import DunningAction, Invoice, OutboundWebhook
from billing_hooks.run import run_day
from core.db import Database
from core.errors import TransientError
from core.ids import new_id
from core.models import BillingAccount
from tests.conftest import make_settings

DAY = datetime.date(2027, 5, 15)


async def test_same_day_twice_at_once(tmp_path: Path, db_url: str) -> None:
    settings = make_settings(tmp_path, db_url)
    db = Database(db_url)
    try:
        async with db.session() as s:
            for n in range(3):
                account = BillingAccount(id=f"ba_{n}", external_id=f"acct_{n}", kind="tenant")
                account.name, account.plan, account.standing = f"A{n}", "paid", "good"
                s.add(account)
                await s.flush()
                s.add(
                    Invoice(
                        id=new_id("in_"),
                        external_id=f"in_{n}",
                        account_id=account.id,
                        due_on=datetime.date(2027, 5, 1),
                    )
                )
            await s.commit()
        results = await asyncio.gather(
            run_day(db, settings, DAY), run_day(db, settings, DAY), return_exceptions=True
        )
        for r in results:
            assert not isinstance(r, BaseException) or isinstance(r, TransientError), r
        await run_day(db, settings, DAY)  # what a busy writer left over (SQLite) is done now
        assert await run_day(db, settings, DAY) == []
        async with db.session() as s:
            taken = Counter(
                (a.account_id, a.action) for a in (await s.execute(select(DunningAction))).scalars()
            )
            hooks = Counter(w.type for w in (await s.execute(select(OutboundWebhook))).scalars())
            standings = {
                a.id: a.standing for a in (await s.execute(select(BillingAccount))).scalars()
            }
    finally:
        await db.dispose()
    assert set(taken.values()) == {1} and len(taken) == 12  # 4 actions x 3 accounts, once
    assert hooks == {
        "ticket.open": 3,
        "contact.phone_followup": 3,
        "fee.late": 3,
        "service.suspend": 3,
    }
    assert set(standings.values()) == {"suspended"}
