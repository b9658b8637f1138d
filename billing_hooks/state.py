"""The engine's view of an account, read from the database, and the billing calendar."""

from __future__ import annotations

import datetime
import zoneinfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_hooks.dunning import AccountState, InvoiceState
from billing_hooks.models import DunningAction, Invoice, PaymentMethod
from core.models import BillingAccount


def today(timezone: str, at: float | None = None) -> datetime.date:
    """The calendar day in ``billing_timezone`` (now, or at the epoch ``at``)."""
    tz = zoneinfo.ZoneInfo(timezone)
    if at is None:
        return datetime.datetime.now(tz).date()
    return datetime.datetime.fromtimestamp(at, tz).date()


async def load(
    session: AsyncSession, account: BillingAccount
) -> tuple[AccountState, list[InvoiceState], set[tuple[str, str, str]]]:
    """(account, invoices, keys of the actions already taken)."""
    methods = (
        (await session.execute(select(PaymentMethod).where(PaymentMethod.account_id == account.id)))
        .scalars()
        .all()
    )
    has_secondary = any(m.role == "secondary" and m.status == "active" for m in methods)
    state = AccountState(
        id=account.id,
        plan=account.plan,
        standing=account.standing,
        standing_reason=account.standing_reason,
        trial_ends_on=account.trial_ends_on,
        has_secondary=has_secondary,
        delinquent_year=account.delinquent_year,
    )
    rows = (
        (await session.execute(select(Invoice).where(Invoice.account_id == account.id)))
        .scalars()
        .all()
    )
    invoices = [InvoiceState(i.id, i.due_on, i.status, i.paid_on) for i in rows]
    taken = {
        (a.invoice_id, a.action, a.period)
        for a in (
            await session.execute(
                select(DunningAction).where(DunningAction.account_id == account.id)
            )
        )
        .scalars()
        .all()
    }
    return state, invoices, taken
