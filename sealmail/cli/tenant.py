"""``sealmail tenant create|list|show|suspend|resume|terminate``: tenants, and how their
credentials are printed (once, at creation). ``tenant update`` is in
:mod:`sealmail.cli.tenant_update`; ``tenant dns`` and ``tenant dkim`` in
:mod:`sealmail.cli.tenant_dns`."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from core.config.settings import Settings
from sealmail.cli.common import _print_json, _run, _settings, _ts, config_option, json_option, out
from sealmail.cli.tenant_dns import tenant_dkim, tenant_dns
from sealmail.cli.tenant_update import tenant_update


def _creds_dict(creds: Any, domains: list[str]) -> dict[str, Any]:
    return {
        "id": creds.tenant_id,
        "name": creds.name,
        "domains": domains,
        "smtp_username": creds.smtp_username,
        "smtp_password": creds.smtp_password,
        "connector_token": creds.connector_token,
        "api_key": creds.api_key,
    }


def _show_creds(creds: Any, domains: list[str]) -> None:
    out.print(f"  tenant id        {creds.tenant_id}")
    out.print(f"  name             {creds.name}")
    out.print(f"  domains          {', '.join(domains)}")
    out.print(f"  SMTP username    {creds.smtp_username}")
    out.print(f"  SMTP password    {creds.smtp_password}")
    out.print(f"  connector token  {creds.connector_token}")
    out.print(f"  admin API key    {creds.api_key}")


@click.group()
def tenant() -> None:
    """Tenants: create, list, show, update, suspend, resume, terminate."""


@tenant.command("create")
@click.argument("name")
@click.option("--domain", "domains", multiple=True, required=True, help="A domain (repeatable).")
@click.option("--partner", "partner_ref", default=None, help="Owning partner (id or name).")
@click.option("--plan", type=click.Choice(["trial", "nfr", "paid"]), default="paid")
@click.option(
    "--trial-ends",
    default=None,
    metavar="YYYY-MM-DD",
    help="The trial's last day; after it mail gets 451 until the tenant is converted.",
)
@click.option("--display-name", default="", help="Name shown to recipients.")
@click.option(
    "--network",
    "networks",
    multiple=True,
    help="A network the tenant's connector may send from (CIDR, repeatable).",
)
@click.option(
    "--private-network",
    "private_networks",
    multiple=True,
    help="A network whose addresses alone identify the tenant (CIDR, repeatable).",
)
@config_option
@json_option
@click.pass_context
def tenant_create(
    ctx: click.Context,
    name: str,
    domains: tuple[str, ...],
    partner_ref: str | None,
    plan: str,
    trial_ends: str | None,
    display_name: str,
    networks: tuple[str, ...],
    private_networks: tuple[str, ...],
    config: str | None,
    as_json: bool,
) -> None:
    """Create a tenant; prints its credentials once."""
    from billing_hooks.enforcement import standing_for_new_tenant
    from branding.partner_brand import start_from_partner_brand
    from core.accounts.domains import tenant_domains
    from core.accounts.tenants import create_tenant
    from core.accounts.trials import parse_end_date
    from core.models import Tenant
    from core.services import Services

    async def go() -> tuple[Any, list[str], str | None]:
        svc = Services.open(_settings(ctx))
        try:
            async with svc.db.session() as s:
                creds = await create_tenant(
                    s,
                    svc.keyring,
                    name,
                    domains,
                    partner=partner_ref,
                    plan=plan,
                    display_name=display_name,
                    networks=[(n, False) for n in networks] + [(n, True) for n in private_networks],
                    trial_ends_on=parse_end_date(trial_ends) if trial_ends else None,
                )
                tenant = await s.get(Tenant, creds.tenant_id)
                assert tenant is not None
                await start_from_partner_brand(s, tenant, "cli")
                # a new tenant of an unpaid partner waits with the others (451), at once
                standing = await standing_for_new_tenant(s, tenant)
                await s.commit()
                return creds, await tenant_domains(s, creds.tenant_id), standing
        finally:
            await svc.close()

    creds, doms, standing = _run(go())
    if as_json:
        _print_json({**_creds_dict(creds, doms), "standing": standing or "active"})
        return
    out.print(f"tenant {creds.name} created (credentials are shown only now):")
    _show_creds(creds, doms)
    if standing:
        out.print(f"tenant {creds.name} is {standing}: its partner's billing account is {standing}")


async def _tenant_rows(settings: Settings) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from core.accounts.tenants import list_tenants
    from core.models import Partner, TenantDomain
    from core.services import Services

    svc = Services.open(settings)
    try:
        async with svc.db.session() as s:
            domains: dict[str, list[str]] = {}
            for d in (await s.execute(select(TenantDomain))).scalars():
                domains.setdefault(d.tenant_id, []).append(d.domain)
            partners = {p.id: p.name for p in (await s.execute(select(Partner))).scalars()}
            return [
                {
                    "id": t.id,
                    "name": t.name,
                    "display_name": t.display_name,
                    "plan": t.plan,
                    "trial_ends_on": t.trial_ends_on.isoformat() if t.trial_ends_on else None,
                    "standing": t.standing,
                    "partner": partners.get(t.partner_id or "", None),
                    "domains": sorted(domains.get(t.id, [])),
                    "created_at": _ts(t.created_at),
                }
                for t in await list_tenants(s)
            ]
    finally:
        await svc.close()


@tenant.command("list")
@config_option
@json_option
@click.pass_context
def tenant_list(ctx: click.Context, config: str | None, as_json: bool) -> None:
    """List tenants."""
    rows = _run(_tenant_rows(_settings(ctx)))
    if as_json:
        _print_json(rows)
        return
    table = Table("id", "name", "plan", "standing", "partner", "domains")
    for r in rows:
        table.add_row(
            r["id"],
            r["name"],
            r["plan"],
            r["standing"],
            r["partner"] or "-",
            " ".join(r["domains"]),
        )
    out.print(table if rows else "no tenants")


@tenant.command("show")
@click.argument("ref")
@config_option
@json_option
@click.pass_context
def tenant_show(ctx: click.Context, ref: str, config: str | None, as_json: bool) -> None:
    """Show one tenant."""
    from sqlalchemy import func, select

    from archive import retention
    from core.accounts.domains import tenant_domains
    from core.accounts.networks import tenant_networks
    from core.accounts.partners import find_partner
    from core.accounts.tenants import find_tenant
    from core.models import Message
    from core.services import Services

    async def go() -> dict[str, Any]:
        svc = Services.open(_settings(ctx))
        try:
            async with svc.db.session() as s:
                t = await find_tenant(s, ref)
                nets = await tenant_networks(s, t.id)
                count = (
                    await s.execute(
                        select(func.count()).select_from(Message).where(Message.tenant_id == t.id)
                    )
                ).scalar()
                partner_name = None
                if t.partner_id:
                    partner_name = (await find_partner(s, t.partner_id)).name
                return {
                    "id": t.id,
                    "name": t.name,
                    "display_name": t.display_name,
                    "plan": t.plan,
                    "trial_ends_on": t.trial_ends_on.isoformat() if t.trial_ends_on else None,
                    "standing": t.standing,
                    "partner": partner_name,
                    "domains": await tenant_domains(s, t.id),
                    "networks": [{"cidr": n.cidr, "private": n.private} for n in nets],
                    "hide_subject": t.hide_subject,
                    "sensitivity_trigger": t.sensitivity_trigger,
                    "brand_color": t.brand_color,
                    "logo_url": t.logo_url,
                    "notification_from": t.notification_from,
                    "wkd_lookup": t.wkd_lookup,
                    "pgp_protect_subject": t.pgp_protect_subject,
                    "relay": t.relay,
                    "journal_address": t.journal_address,
                    "portal_host": t.portal_host or "",
                    "archive_retention_days": retention.archive_days(svc.settings, t),
                    "portal_retention_days": retention.portal_days(svc.settings, t),
                    "messages": int(count or 0),
                    "created_at": _ts(t.created_at),
                }
        finally:
            await svc.close()

    data = _run(go())
    if as_json:
        _print_json(data)
        return
    for key in ("id", "name", "display_name", "plan", "trial_ends_on", "standing", "partner"):
        out.print(f"{key:<14} {data[key] if data[key] is not None else '-'}")
    out.print(f"{'messages':<14} {data['messages']}")
    out.print(f"{'domains':<14} {', '.join(data['domains'])}")
    nets = ", ".join(n["cidr"] + (" (private)" if n["private"] else "") for n in data["networks"])
    out.print(f"{'networks':<14} {nets or '-'}")
    out.print(f"{'next hop':<14} {data['relay'] or '(global relay)'}")
    out.print(f"{'portal host':<14} {data['portal_host'] or '(the operator portal)'}")
    out.print(
        f"{'retention':<14} archive {data['archive_retention_days']} days, "
        f"portal {data['portal_retention_days']} days"
    )
    out.print(
        f"{'notices':<14} from {data['notification_from'] or '(default)'}, subject "
        f"{'hidden' if data['hide_subject'] else 'shown'}, color {data['brand_color']}"
    )
    out.print(f"{'created':<14} {data['created_at']} UTC")


def _standing_command(name: str, standing: str, help_text: str) -> None:
    @tenant.command(name, help=help_text)
    @click.argument("ref")
    @config_option
    @json_option
    @click.pass_context
    def command(ctx: click.Context, ref: str, config: str | None, as_json: bool) -> None:
        from core.accounts.tenants import find_tenant, set_standing
        from core.services import Services

        async def go() -> dict[str, Any]:
            svc = Services.open(_settings(ctx))
            try:
                async with svc.db.session() as s:
                    t = await find_tenant(s, ref)
                    previous = t.standing
                    if previous != standing:
                        await set_standing(s, t, standing, actor="cli")
                        await s.commit()
                    return {"id": t.id, "name": t.name, "standing": standing, "was": previous}
            finally:
                await svc.close()

        data = _run(go())
        if as_json:
            _print_json(data)
        elif data["was"] == standing:
            out.print(f"tenant {data['name']} is already {standing}")
        else:
            out.print(f"tenant {data['name']}: {data['was']} → {standing}")


_standing_command("suspend", "suspended", "Suspend a tenant: its mail waits at the sender (451).")
_standing_command("resume", "active", "Resume a suspended tenant.")
_standing_command("terminate", "terminated", "Terminate a tenant: its mail is refused (550).")


tenant.add_command(tenant_update)
tenant.add_command(tenant_dns)
tenant.add_command(tenant_dkim)
