"""The dunning engine: a pure function of (account, invoices, actions already taken, day,
schedule) → the actions due that day. No I/O and no clock, so every rule of the policy can
be checked on a calendar (tests/billing_hooks/test_year.py).

A day is judged when it is over: an invoice is "unpaid on day X" when it was not paid by
the end of X (in ``billing_timezone``). Rules whose day has passed still fire on a later
run if the invoice is still unpaid (a worker that was down catches up), and each fires once
per invoice: the caller passes the keys of the actions already taken.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable, Set

from billing_hooks.schedule import (
    ACCOUNT_FLAG,
    CHARGE_SECONDARY,
    DEFAULT_SCHEDULE,
    RESUME,
    SECONDARY_REQUEST,
    SUSPEND,
    Schedule,
)

ONE_DAY = datetime.timedelta(days=1)
# why an account is not in good standing; payment lifts only a billing suspension
REASON_BILLING = "billing"
REASON_TRIAL = "trial"
REASON_CANCELLED = "cancelled"
REASON_MANUAL = "manual"


@dataclasses.dataclass(frozen=True)
class InvoiceState:
    id: str
    due_on: datetime.date | None
    status: str = "open"  # open | paid | void
    paid_on: datetime.date | None = None


@dataclasses.dataclass(frozen=True)
class AccountState:
    id: str
    plan: str = "paid"  # trial | nfr | paid
    standing: str = "good"  # good | suspended | terminated
    standing_reason: str = ""
    trial_ends_on: datetime.date | None = None
    has_secondary: bool = False  # a secondary payment method on file that has not failed
    delinquent_year: int | None = None  # as recorded (carries a flag into the next year)


@dataclasses.dataclass(frozen=True)
class Action:
    action: str
    account_id: str
    invoice_id: str = ""  # "" = about the account as a whole
    period: str = ""
    reason: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        """What makes it "the same action" for idempotence (with the account)."""
        return (self.invoice_id, self.action, self.period)


def unpaid_at_end_of(invoice: InvoiceState, day: datetime.date) -> bool:
    """Open (and not void) at the end of ``day``. A paid invoice with no date counts as paid
    all along."""
    if invoice.status == "void" or invoice.due_on is None:
        return False
    if invoice.status == "paid":
        return invoice.paid_on is not None and invoice.paid_on > day
    return True


def seriously_late_on(invoice: InvoiceState, schedule: Schedule) -> datetime.date | None:
    """The day an invoice became seriously late, or None if it never did."""
    if invoice.due_on is None:
        return None
    day = invoice.due_on + datetime.timedelta(days=schedule.seriously_late_offset)
    return day if unpaid_at_end_of(invoice, day) else None


def seriously_late_count(
    invoices: Iterable[InvoiceState], year: int, up_to: datetime.date, schedule: Schedule
) -> int:
    """Invoices that became seriously late in ``year`` on or before ``up_to``."""
    n = 0
    for inv in invoices:
        day = seriously_late_on(inv, schedule)
        if day is not None and day.year == year and day <= up_to:
            n += 1
    return n


def is_delinquent(
    account: AccountState,
    invoices: Iterable[InvoiceState],
    on: datetime.date,
    schedule: Schedule = DEFAULT_SCHEDULE,
) -> bool:
    """Flagged on ``on``: more than ``delinquent_after`` seriously late invoices so far this
    year, or in one of the ``delinquent_carry_years`` years before."""
    invoices = list(invoices)
    if seriously_late_count(invoices, on.year, on, schedule) > schedule.delinquent_after:
        return True
    for year in range(on.year - schedule.delinquent_carry_years, on.year):
        if account.delinquent_year == year:
            return True
        end = datetime.date(year, 12, 31)
        if seriously_late_count(invoices, year, end, schedule) > schedule.delinquent_after:
            return True
    return False


def _suspend_day(
    account: AccountState,
    invoice: InvoiceState,
    invoices: list[InvoiceState],
    schedule: Schedule,
) -> datetime.date | None:
    """The first day whose end finds this invoice worth a suspension (None: never)."""
    assert invoice.due_on is not None
    flagged = is_delinquent(account, invoices, invoice.due_on, schedule)
    days = [
        invoice.due_on + datetime.timedelta(days=r.offset)
        for r in schedule.rules
        if r.action == SUSPEND and (flagged or not r.flagged)
    ]
    return min(days) if days else None


def suspension_due(
    account: AccountState,
    invoices: Iterable[InvoiceState],
    today: datetime.date,
    schedule: Schedule = DEFAULT_SCHEDULE,
) -> bool:
    """Whether some invoice still unpaid at the end of ``today`` has passed its suspension
    day (a billing suspension must stay, or start)."""
    invoices = list(invoices)
    for inv in invoices:
        if not unpaid_at_end_of(inv, today):
            continue
        day = _suspend_day(account, inv, invoices, schedule)
        if day is not None and day <= today:
            return True
    return False


def reinstatement(
    account: AccountState,
    invoices: Iterable[InvoiceState],
    today: datetime.date,
    schedule: Schedule = DEFAULT_SCHEDULE,
) -> list[Action]:
    """After a payment: resume a billing suspension once nothing overdue is left."""
    if account.standing != "suspended" or account.standing_reason != REASON_BILLING:
        return []
    if suspension_due(account, invoices, today, schedule):
        return []
    return [Action(RESUME, account.id, period=today.isoformat(), reason=REASON_BILLING)]


def evaluate(
    account: AccountState,
    invoices: Iterable[InvoiceState],
    taken: Set[tuple[str, str, str]],
    today: datetime.date,
    schedule: Schedule = DEFAULT_SCHEDULE,
) -> list[Action]:
    """The actions due for ``account`` at the end of ``today``; ``taken`` holds the keys
    (:attr:`Action.key`) of the actions already taken, which are not repeated."""
    if account.standing == "terminated" or account.plan == "nfr":
        return []  # NFR licences are free: never dunned
    invoices = sorted(invoices, key=lambda i: (i.due_on or datetime.date.min, i.id))
    out: list[Action] = []
    seen = set(taken)

    def add(action: Action) -> None:
        if action.key not in seen:
            seen.add(action.key)
            out.append(action)

    standing_good = account.standing == "good"
    if (
        account.plan == "trial"
        and account.trial_ends_on is not None
        and today >= account.trial_ends_on
        and standing_good
    ):
        add(Action(SUSPEND, account.id, period="trial", reason=REASON_TRIAL))
        standing_good = False

    count = seriously_late_count(invoices, today.year, today, schedule)
    if count > schedule.delinquent_after:
        year = str(today.year)
        if ("", ACCOUNT_FLAG, year) not in seen:
            add(Action(ACCOUNT_FLAG, account.id, period=year, reason=f"{count} seriously late"))
            if not account.has_secondary:
                add(Action(SECONDARY_REQUEST, account.id, period=year))

    for inv in invoices:
        if inv.due_on is None or not unpaid_at_end_of(inv, today):
            continue
        flagged = is_delinquent(account, invoices, inv.due_on, schedule)
        for rule in schedule.rules:
            if rule.flagged and not flagged:
                continue
            if today < inv.due_on + datetime.timedelta(days=rule.offset):
                continue
            name = rule.action
            if name == CHARGE_SECONDARY and not account.has_secondary:
                name = SECONDARY_REQUEST  # nothing to charge: ask for one
            if name == SUSPEND:
                if not standing_good:
                    continue  # not taken: a later run catches up if the account is resumed
                standing_good = False
            add(Action(name, account.id, inv.id, reason=REASON_BILLING))

    if not any(a.action == SUSPEND for a in out):
        for action in reinstatement(account, invoices, today, schedule):
            add(action)
    return out
