"""One day of the dunning schedule over every account: ``sealmail billing run`` and the
worker's daily job.

Each account is one transaction: its actions are recorded under their unique key together
with their effects, so running the same day twice does nothing the second time, and two
workers racing on the same account collide on the key and only one commits.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import exc, func, select

from billing_hooks import dunning, enforcement
from billing_hooks.actions import take
from billing_hooks.models import DunningAction, Invoice
from billing_hooks.notify import Mailer
from billing_hooks.schedule import RESUME, SUSPEND, Schedule, load_schedule
from billing_hooks.state import load, today
from core.config.settings import Settings
from core.db import Database
from core.errors import TransientError
from core.models import BillingAccount

log = logging.getLogger("sealmail.billing")


def default_day(settings: Settings) -> datetime.date:
    """The day a run judges when none is named: the last day that is over in
    ``billing_timezone`` (yesterday), since a day is judged when it has ended."""
    return today(settings.billing_timezone) - datetime.timedelta(days=1)


async def account_ids(db: Database) -> list[str]:
    """Accounts the schedule applies to (not terminated, not NFR)."""
    async with db.session() as s:
        stmt = (
            select(BillingAccount.id)
            .where(BillingAccount.standing != "terminated", BillingAccount.plan != "nfr")
            .order_by(BillingAccount.id)
        )
        return list((await s.execute(stmt)).scalars().all())


async def run_day(
    db: Database,
    settings: Settings,
    day: datetime.date,
    *,
    dry_run: bool = False,
    mailer: Mailer | None = None,
    schedule: Schedule | None = None,
    on_account: Callable[[], None] | None = None,
) -> list[dict[str, Any]]:
    """Evaluate ``day`` for every account and take (or, ``dry_run``, only list) the
    actions due. Returns one dict per action taken or due."""
    schedule = schedule or load_schedule(settings.billing_schedule_file)
    done: list[dict[str, Any]] = []
    failed = 0
    for account_id in await account_ids(db):
        try:
            done.extend(
                await _run_account(db, settings, account_id, day, dry_run, mailer, schedule)
            )
        except exc.IntegrityError:
            log.info("billing: account %s for %s was run by another worker", account_id, day)
        except TransientError as err:
            # SQLite's writer busy with another worker, or the database away: the other
            # accounts go on; this one is taken by the next run (rules catch up)
            failed += 1
            log.warning("billing: account %s for %s not run: %s", account_id, day, err)
        except Exception as err:
            # a fault of one account's data (or of ours) never stops the other accounts'
            # day; it is logged (the traceback at debug level) and the run ends in an error
            failed += 1
            log.error("billing: account %s for %s failed: %r", account_id, day, err)
            log.debug("billing: account %s failed", account_id, exc_info=True)
        if on_account is not None:
            on_account()
    if failed:
        raise TransientError(f"{failed} account(s) not run for {day} (see the log); run again")
    return done


async def _run_account(
    db: Database,
    settings: Settings,
    account_id: str,
    day: datetime.date,
    dry_run: bool,
    mailer: Mailer | None,
    schedule: Schedule,
) -> list[dict[str, Any]]:
    async with db.session() as s:
        # the row is locked until this account's day is committed: a payment (webhook)
        # arriving meanwhile waits, then sees the suspension and lifts it, instead of the
        # run suspending from invoices it read before the payment (SQLite: one writer)
        account = await s.get(BillingAccount, account_id, with_for_update=True)
        if account is None:
            return []
        state, invoices, taken = await load(s, account)
        actions = dunning.evaluate(state, invoices, taken, day, schedule)
        if any(a.action == RESUME for a in actions):
            # a run for a day before the suspension (an operator's --date in the past)
            # must not undo it
            latest = (
                await s.execute(
                    select(func.max(DunningAction.for_date)).where(
                        DunningAction.account_id == account.id, DunningAction.action == SUSPEND
                    )
                )
            ).scalar()
            if latest is not None and latest > day:
                actions = [a for a in actions if a.action != RESUME]
        out = []
        for action in actions:
            inv = await s.get(Invoice, action.invoice_id) if action.invoice_id else None
            out.append(
                {
                    "date": day.isoformat(),
                    "account": account.external_id,
                    "account_name": account.name,
                    "action": action.action,
                    "invoice": inv.external_id if inv else "",
                    "reason": action.reason,
                }
            )
            if not dry_run:
                await take(s, account, action, day, settings, mailer)
        caught_up = [] if dry_run else await enforcement.suspend_new_tenants(s, account)
        if caught_up:
            log.info(
                "billing: %s: new tenants suspended with it: %s", account.external_id, caught_up
            )
        if not dry_run and (actions or caught_up):
            await s.commit()
        for item in out if not dry_run else []:
            log.info("billing: %s %s %s", item["account"], item["action"], item["invoice"] or "-")
        return out
