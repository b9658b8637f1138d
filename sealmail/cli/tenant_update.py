"""``sealmail tenant update``: change a tenant's branding, notices, key look-up, next hop,
retention, networks and the defaults of secure conversations (receipt, reply, forward, who
may sign in at ``/sent``)."""

from __future__ import annotations

from typing import Any

import click

from sealmail.cli.common import _print_json, _run, _settings, config_option, json_option, out


@click.command("update")
@click.argument("ref")
@click.option("--display-name", default=None, help="Name shown to recipients.")
@click.option("--logo-url", default=None, help="https:// URL of the logo ('' removes it).")
@click.option("--brand-color", default=None, help="Header color, e.g. #1f4e79.")
@click.option(
    "--hide-subject/--show-subject", default=None, help="Leave the subject out of notices."
)
@click.option(
    "--sensitivity-trigger/--no-sensitivity-trigger",
    default=None,
    help="Encrypt mail marked Sensitivity: Company-Confidential.",
)
@click.option("--notification-from", default=None, help="Sender of notices (tenant's domain).")
@click.option(
    "--wkd-lookup/--no-wkd-lookup",
    default=None,
    help="Look recipients' OpenPGP keys up in their domain's Web Key Directory.",
)
@click.option(
    "--pgp-protect-subject/--no-pgp-protect-subject",
    default=None,
    help="OpenPGP: move the subject inside the encrypted part.",
)
@click.option(
    "--journal-address",
    default=None,
    help="Address whose mail is archived as Exchange journal reports, unique to the tenant "
    "(for Exchange Online one outside the tenant's domains) ('' turns it off).",
)
@click.option(
    "--relay",
    default=None,
    help="This tenant's next hop: HOST:PORT (e.g. its Microsoft 365 endpoint), 'mx', "
    "or '' for the global relay.",
)
@click.option(
    "--archive-retention",
    default=None,
    help="How long the archive copy is kept: days, weeks or years, e.g. 10y "
    "('' = the archive_retention setting).",
)
@click.option(
    "--portal-retention",
    default=None,
    help="How long recipients can read a portal message, e.g. 30d ('' = portal_retention).",
)
@click.option(
    "--receipt-default",
    type=click.Choice(["yes", "no"]),
    default=None,
    help="Send the sender one 'opened' mail when the first recipient opens a message, "
    "unless X-Sealmail-Receipt says otherwise.",
)
@click.option(
    "--reply-default",
    type=click.Choice(["none", "sender", "all"]),
    default=None,
    help="What recipients may reply to in the portal, unless X-Sealmail-Reply says otherwise.",
)
@click.option(
    "--forward-default",
    type=click.Choice(["no", "internal", "yes"]),
    default=None,
    help="Whether recipients may forward from the portal (internal: only to the tenant's "
    "domains), unless X-Sealmail-Forward says otherwise.",
)
@click.option(
    "--sent-users",
    type=click.Choice(["domain", "listed"]),
    default=None,
    help="Who may sign in at /sent and /compose: any address of the tenant's domains, or "
    "only its listed users.",
)
@click.option(
    "--portal-host",
    default=None,
    help="The tenant's own portal host name for its links, e.g. secure.acme.example ('' clears).",
)
@click.option(
    "--plan",
    type=click.Choice(["trial", "nfr", "paid"]),
    default=None,
    help="Convert the tenant (a trial that ended can send again at once).",
)
@click.option(
    "--trial-ends",
    default=None,
    metavar="YYYY-MM-DD",
    help="Put the tenant on a trial ending then.",
)
@click.option("--network", "networks", multiple=True, help="Add a connector network (CIDR).")
@click.option(
    "--private-network", "private_networks", multiple=True, help="Add a private network (CIDR)."
)
@config_option
@json_option
@click.pass_context
def tenant_update(
    ctx: click.Context,
    ref: str,
    display_name: str | None,
    logo_url: str | None,
    brand_color: str | None,
    hide_subject: bool | None,
    sensitivity_trigger: bool | None,
    notification_from: str | None,
    wkd_lookup: bool | None,
    pgp_protect_subject: bool | None,
    journal_address: str | None,
    relay: str | None,
    archive_retention: str | None,
    portal_retention: str | None,
    receipt_default: str | None,
    reply_default: str | None,
    forward_default: str | None,
    sent_users: str | None,
    portal_host: str | None,
    plan: str | None,
    trial_ends: str | None,
    networks: tuple[str, ...],
    private_networks: tuple[str, ...],
    config: str | None,
    as_json: bool,
) -> None:
    """Change a tenant's branding, notice, key look-up, next hop, retention and network
    settings."""
    from archive import retention
    from branding.brands import follow_tenant
    from core.accounts.networks import add_network
    from core.accounts.tenant_settings import update_tenant
    from core.accounts.tenants import find_tenant
    from core.accounts.trials import change_plan, parse_end_date, set_trial_end
    from core.errors import PermanentError
    from core.services import Services

    if trial_ends is not None and plan not in (None, "trial"):
        raise click.UsageError("--trial-ends goes with --plan trial")

    async def go() -> dict[str, Any]:
        svc = Services.open(_settings(ctx))
        try:
            async with svc.db.session() as s:
                t = await find_tenant(s, ref)
                changes = await update_tenant(
                    s,
                    t,
                    "cli",
                    display_name=display_name,
                    logo_url=logo_url,
                    brand_color=brand_color,
                    hide_subject=hide_subject,
                    sensitivity_trigger=sensitivity_trigger,
                    notification_from=notification_from,
                    wkd_lookup=wkd_lookup,
                    pgp_protect_subject=pgp_protect_subject,
                    relay=relay,
                    journal_address=journal_address,
                    receipt_default=None if receipt_default is None else receipt_default == "yes",
                    reply_default=reply_default,
                    forward_default=forward_default,
                    sent_users=sent_users,
                    portal_host=portal_host,
                )
                await follow_tenant(s, t, changes, "cli")
                changes.update(
                    await retention.set_tenant_retention(
                        s, t, "cli", archive=archive_retention, portal=portal_retention
                    )
                )
                if trial_ends is not None or plan == "trial":
                    if trial_ends is None:
                        raise PermanentError("a trial needs its last day: --trial-ends YYYY-MM-DD")
                    end = parse_end_date(trial_ends)
                    await set_trial_end(s, t, end, "cli")
                    changes["plan"], changes["trial_ends_on"] = "trial", end.isoformat()
                elif plan is not None and plan != t.plan:
                    await change_plan(s, t, plan, "cli")
                    changes["plan"] = plan
                for cidr in networks:
                    await add_network(s, t, cidr, private=False)
                    changes.setdefault("networks_added", []).append(cidr)
                for cidr in private_networks:
                    await add_network(s, t, cidr, private=True)
                    changes.setdefault("private_networks_added", []).append(cidr)
                await s.commit()
                return {"id": t.id, "name": t.name, "changed": changes}
        finally:
            await svc.close()

    data = _run(go())
    if as_json:
        _print_json(data)
    elif not data["changed"]:
        out.print(f"tenant {data['name']}: nothing to change")
    else:
        for key, value in data["changed"].items():
            out.print(f"tenant {data['name']}: {key} = {value}")
