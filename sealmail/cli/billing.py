"""``sealmail billing run|deliver``: the dunning schedule for a day (SPEC §1, §7) and the
signed outbound webhooks waiting to be sent."""

from __future__ import annotations

import datetime
from typing import Any

import click

from sealmail.cli.common import (
    Failure,
    _print_json,
    _run,
    _settings,
    config_option,
    json_option,
    out,
    progress_bar,
)


@click.group()
def billing() -> None:
    """Billing: run the dunning schedule."""


def _day(value: str | None) -> datetime.date | None:
    if value is None:
        return None
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date YYYY-MM-DD") from None


@billing.command("run")
@click.option(
    "--date",
    "date_text",
    metavar="YYYY-MM-DD",
    help="The day to judge (default: yesterday in billing_timezone, the last day that is over).",
)
@click.option("--dry-run", is_flag=True, help="Print the actions due without taking them.")
@config_option
@json_option
@click.pass_context
def billing_run(
    ctx: click.Context, date_text: str | None, dry_run: bool, config: str | None, as_json: bool
) -> None:
    """Run the dunning schedule for one day; running the same day again does nothing."""
    from billing_hooks.run import account_ids, default_day, run_day
    from branding.billing_mail import billing_mailer
    from core.services import Services

    day = _day(date_text)
    settings = _settings(ctx)
    day = day or default_day(settings)

    async def go() -> list[dict[str, Any]]:
        svc = Services.open(settings)
        try:
            total = len(await account_ids(svc.db))
            with progress_bar(f"billing {day}", not as_json) as progress:
                done = 0

                def tick() -> None:
                    nonlocal done
                    done += 1
                    if progress is not None:
                        progress(done, total)

                return await run_day(
                    svc.db,
                    settings,
                    day,
                    dry_run=dry_run,
                    mailer=billing_mailer(svc),
                    on_account=tick,
                )
        finally:
            await svc.close()

    actions = _run(go())
    if as_json:
        _print_json({"date": day.isoformat(), "dry_run": dry_run, "actions": actions})
        return
    if not actions:
        out.print(f"{day}: nothing to do")
        return
    verb = "due (dry run, nothing done)" if dry_run else "taken"
    out.print(f"{day}: {len(actions)} action{'s' if len(actions) != 1 else ''} {verb}")
    for a in actions:
        name = a["account_name"] or a["account"]
        invoice = f" invoice {a['invoice']}" if a["invoice"] else ""
        out.print(f"  {a['action']:<24} {name}{invoice}")


@billing.command("deliver")
@config_option
@json_option
@click.pass_context
def billing_deliver(ctx: click.Context, config: str | None, as_json: bool) -> None:
    """Send the signed outbound webhooks that are due (the worker does this by itself)."""
    from billing_hooks.outbound import deliver_due
    from core.db import Database

    settings = _settings(ctx)
    if not settings.billing_outbound_url or not settings.billing_outbound_secret:
        raise Failure("billing_outbound_url and billing_outbound_secret must be set")

    async def go() -> tuple[int, int]:
        db = Database(settings.database_url)
        try:
            return await deliver_due(settings, db, limit=1000)
        finally:
            await db.dispose()

    delivered, failed = _run(go())
    if as_json:
        _print_json({"delivered": delivered, "failed": failed})
    else:
        out.print(f"{delivered} delivered, {failed} failed (retried later)")
    if failed and not delivered:
        raise Failure(f"{failed} webhook(s) could not be delivered")
