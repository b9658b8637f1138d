"""Migration 0005 on SQLite and PostgreSQL: it creates exactly the billing tables of
core.models, and the constraints that exactly-once and idempotence rest on hold."""

from __future__ import annotations

import datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import exc, select

from billing_hooks.models import (
    BillingEvent,
    DunningAction,
    Invoice,
    OutboundWebhook,
    PaymentMethod,
)
from core.db import Database
from core.models import AccountContact, BillingAccount
from sealmail.schema import metadata

BILLING_TABLES = {
    "billing_accounts",
    "account_contacts",
    "invoices",
    "payment_methods",
    "billing_events",
    "dunning_actions",
    "outbound_webhooks",
}


async def test_migration_matches_models(db_url: str) -> None:
    db = Database(db_url)
    try:
        async with db.engine.connect() as conn:

            def diff(sync_conn):  # type: ignore[no-untyped-def]
                ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True})
                return compare_metadata(ctx, metadata())

            changes = await conn.run_sync(diff)
    finally:
        await db.dispose()

    def table_of(change: object) -> str | None:
        while isinstance(change, list):
            change = change[0]
        for part in change:  # type: ignore[union-attr]
            name = getattr(part, "name", None)
            table = getattr(part, "table", None)
            if table is not None and getattr(table, "name", None) in BILLING_TABLES:
                return str(table.name)
            if name in BILLING_TABLES:
                return str(name)
            if isinstance(part, str) and part in BILLING_TABLES:
                return part
        return None

    ours = [c for c in changes if table_of(c)]
    assert ours == []


async def test_rows_and_constraints(db_url: str) -> None:
    db = Database(db_url)
    try:
        async with db.session() as s:
            s.add(BillingAccount(id="a1", external_id="acct_1", kind="tenant", name="Acme"))
            await s.flush()
            s.add(AccountContact(id="c1", account_id="a1", email="bill@acme.test", role="billing"))
            s.add(
                Invoice(
                    id="i1",
                    external_id="in_1",
                    account_id="a1",
                    amount_cents=4900,
                    due_on=datetime.date(2026, 3, 1),
                )
            )
            s.add(PaymentMethod(id="m1", external_id="pm_1", account_id="a1", role="secondary"))
            s.add(BillingEvent(id="evt_1", type="invoice.created"))
            s.add(OutboundWebhook(id="out_1", type="fee.late", payload="{}"))
            s.add(
                DunningAction(
                    account_id="a1",
                    invoice_id="i1",
                    action="fee.late",
                    period="2026-03-01",
                    for_date=datetime.date(2026, 3, 5),
                )
            )
            await s.commit()
        async with db.session() as s:
            account = await s.get(BillingAccount, "a1")
            assert account is not None
            assert (account.standing, account.delinquent, account.plan) == ("good", False, "paid")
            inv = (await s.execute(select(Invoice))).scalar_one()
            assert inv.due_on == datetime.date(2026, 3, 1) and inv.status == "open"
        # the same event id twice: refused by the primary key
        async with db.session() as s:
            s.add(BillingEvent(id="evt_1", type="invoice.created"))
            with pytest.raises(exc.IntegrityError):
                await s.commit()
        # the same dunning action for the same period twice: refused
        async with db.session() as s:
            s.add(
                DunningAction(
                    account_id="a1",
                    invoice_id="i1",
                    action="fee.late",
                    period="2026-03-01",
                    for_date=datetime.date(2026, 3, 6),
                )
            )
            with pytest.raises(exc.IntegrityError):
                await s.commit()
        # the billing system's ids are unique
        async with db.session() as s:
            s.add(BillingAccount(id="a2", external_id="acct_1", kind="tenant"))
            with pytest.raises(exc.IntegrityError):
                await s.commit()
    finally:
        await db.dispose()
