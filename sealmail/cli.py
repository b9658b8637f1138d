"""The ``sealmail`` command line (SPEC §1).

Exit codes: 0 success, 1 a failure explained in one line on stderr, 2 wrong usage.
Every command takes ``--config PATH``; commands that print data take ``--json``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from core.config.loading import load_settings
from core.config.settings import Settings
from core.errors import SealmailError

T = TypeVar("T")
out = Console(highlight=False, soft_wrap=True)


class Failure(click.ClickException):
    """A one-line error and exit code 1."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"sealmail: {self.format_message()}", err=True)


def _settings(ctx: click.Context) -> Settings:
    path = ctx.find_root().meta.get("config_path")
    for c in (ctx, *iter_parents(ctx)):
        if c.params.get("config"):
            path = c.params["config"]
            break
    try:
        return load_settings(path)
    except SealmailError as exc:
        raise Failure(str(exc)) from None


def iter_parents(ctx: click.Context):  # noqa: ANN201
    p = ctx.parent
    while p is not None:
        yield p
        p = p.parent


def _run(coro: Awaitable[T]) -> T:
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except SealmailError as exc:
        raise Failure(str(exc)) from None


def config_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--config",
        "config",
        type=click.Path(dir_okay=False),
        default=None,
        help="Configuration file (default ./sealmail.toml if present).",
    )(f)


def json_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(f)


def handles_errors(f: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except SealmailError as exc:
            raise Failure(str(exc)) from None

    return wrapper


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def _ts(value: float | None) -> str:
    if not value:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(value))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", type=click.Path(dir_okay=False), default=None, help="Config file.")
@click.version_option(package_name="sealmail")
@click.pass_context
def cli(ctx: click.Context, config: str | None) -> None:
    """sealmail: email encryption gateway and secure-message portal."""
    ctx.meta["config_path"] = config


# --- init / migrate / serve -----------------------------------------------------------------


@cli.command()
@click.option("--dir", "directory", default=".", type=click.Path(file_okay=False))
@json_option
@handles_errors
def init(directory: str, as_json: bool) -> None:
    """Create a working directory: config, keys, TLS certificate, database, demo tenant."""
    from sealmail.workdir import DEMO_DOMAIN, init_workdir

    report = init_workdir(directory)
    demo = report.demo
    if as_json:
        _print_json(
            {
                "config": str(report.config_path),
                "created": report.created,
                "demo_tenant": _creds_dict(demo, [DEMO_DOMAIN]) if demo else None,
            }
        )
        return
    if not report.created:
        out.print(f"{report.config_path.parent} is already initialised; nothing changed.")
    for item in report.created:
        out.print(f"created {item}")
    if demo:
        out.print("\nDemo tenant (credentials are shown only now):")
        _show_creds(demo, [DEMO_DOMAIN])
    out.print(f"\nNext: sealmail --config {report.config_path} serve")


@cli.command()
@config_option
@click.pass_context
@handles_errors
def migrate(ctx: click.Context, config: str | None) -> None:
    """Bring the database schema up to date."""
    from core.db import current_revision
    from core.db import migrate as do_migrate

    settings = _settings(ctx)
    before = current_revision(settings.database_url)
    do_migrate(settings.database_url)
    after = current_revision(settings.database_url)
    if before == after:
        out.print(f"database already at revision {after}")
    else:
        out.print(f"database migrated from {before or 'empty'} to {after}")
    from sealmail.workdir import ensure_kms_derivation_secret

    secret = ensure_kms_derivation_secret(settings)  # a KMS root's, in the database
    if secret:
        out.print(f"created {secret}")


@cli.command()
@config_option
@click.option(
    "--role",
    type=click.Choice(["all", "smtp", "portal", "worker"]),
    default="all",
    show_default=True,
)
@click.pass_context
@handles_errors
def serve(ctx: click.Context, config: str | None, role: str) -> None:
    """Run the SMTP gateway, the portal and the workers."""
    from sealmail.logs import setup_logging
    from sealmail.server import check_schema
    from sealmail.server import serve as run_serve

    settings = _settings(ctx)
    setup_logging(settings.log_format, settings.log_level)
    check_schema(settings)

    def announce(line: str) -> None:
        click.echo(line)
        sys.stdout.flush()

    try:
        asyncio.run(run_serve(settings, role, announce))
    except OSError as exc:
        raise Failure(f"cannot start: {exc.strerror or exc}") from None


# --- partners ------------------------------------------------------------------------------


@cli.group()
def partner() -> None:
    """MSP partners (resellers) that own tenants."""


@partner.command("create")
@click.argument("name")
@config_option
@json_option
@click.pass_context
def partner_create(ctx: click.Context, name: str, config: str | None, as_json: bool) -> None:
    """Create a partner."""
    from archive.services import Services
    from core.accounts.partners import create_partner

    async def go() -> dict[str, Any]:
        svc = Services.open(_settings(ctx))
        try:
            async with svc.db.session() as s:
                p = await create_partner(s, name)
                await s.commit()
                return {"id": p.id, "name": p.name}
        finally:
            await svc.close()

    data = _run(go())
    if as_json:
        _print_json(data)
    else:
        out.print(f"partner {data['name']} created: {data['id']}")


@partner.command("list")
@config_option
@json_option
@click.pass_context
def partner_list(ctx: click.Context, config: str | None, as_json: bool) -> None:
    """List partners."""
    from sqlalchemy import func, select

    from archive.services import Services
    from core.accounts.partners import list_partners
    from core.models import Tenant

    async def go() -> list[dict[str, Any]]:
        svc = Services.open(_settings(ctx))
        try:
            async with svc.db.session() as s:
                counts = dict(
                    (
                        await s.execute(
                            select(Tenant.partner_id, func.count()).group_by(Tenant.partner_id)
                        )
                    ).all()
                )
                return [
                    {
                        "id": p.id,
                        "name": p.name,
                        "tenants": counts.get(p.id, 0),
                        "created_at": _ts(p.created_at),
                    }
                    for p in await list_partners(s)
                ]
        finally:
            await svc.close()

    rows = _run(go())
    if as_json:
        _print_json(rows)
        return
    table = Table("id", "name", "tenants", "created (UTC)")
    for r in rows:
        table.add_row(r["id"], r["name"], str(r["tenants"]), r["created_at"])
    out.print(table if rows else "no partners")


@partner.command("show")
@click.argument("ref")
@config_option
@json_option
@click.pass_context
def partner_show(ctx: click.Context, ref: str, config: str | None, as_json: bool) -> None:
    """Show a partner and its tenants."""
    from sqlalchemy import select

    from archive.services import Services
    from core.accounts.partners import find_partner
    from core.models import Tenant

    async def go() -> dict[str, Any]:
        svc = Services.open(_settings(ctx))
        try:
            async with svc.db.session() as s:
                p = await find_partner(s, ref)
                tenants = (
                    (await s.execute(select(Tenant).where(Tenant.partner_id == p.id)))
                    .scalars()
                    .all()
                )
                return {
                    "id": p.id,
                    "name": p.name,
                    "created_at": _ts(p.created_at),
                    "tenants": [
                        {"id": t.id, "name": t.name, "plan": t.plan, "standing": t.standing}
                        for t in tenants
                    ],
                }
        finally:
            await svc.close()

    data = _run(go())
    if as_json:
        _print_json(data)
        return
    out.print(f"partner  {data['name']} ({data['id']})\ncreated  {data['created_at']} UTC")
    for t in data["tenants"]:
        out.print(f"  tenant {t['name']} ({t['id']}) plan={t['plan']} standing={t['standing']}")


# --- tenants -------------------------------------------------------------------------------


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


@cli.group()
def tenant() -> None:
    """Tenants: create, list, show, update, suspend, resume, terminate."""


@tenant.command("create")
@click.argument("name")
@click.option("--domain", "domains", multiple=True, required=True, help="A domain (repeatable).")
@click.option("--partner", "partner_ref", default=None, help="Owning partner (id or name).")
@click.option("--plan", type=click.Choice(["trial", "nfr", "paid"]), default="paid")
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
    display_name: str,
    networks: tuple[str, ...],
    private_networks: tuple[str, ...],
    config: str | None,
    as_json: bool,
) -> None:
    """Create a tenant; prints its credentials once."""
    from archive.services import Services
    from billing_hooks.enforcement import standing_for_new_tenant
    from core.accounts.domains import tenant_domains
    from core.accounts.tenants import create_tenant
    from core.models import Tenant

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
                )
                tenant = await s.get(Tenant, creds.tenant_id)
                assert tenant is not None
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

    from archive.services import Services
    from core.accounts.tenants import list_tenants
    from core.models import Partner, TenantDomain

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
    from archive.services import Services
    from core.accounts.domains import tenant_domains
    from core.accounts.networks import tenant_networks
    from core.accounts.partners import find_partner
    from core.accounts.tenants import find_tenant
    from core.models import Message

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
    for key in ("id", "name", "display_name", "plan", "standing", "partner", "messages"):
        out.print(f"{key:<14} {data[key] if data[key] is not None else '-'}")
    out.print(f"{'domains':<14} {', '.join(data['domains'])}")
    nets = ", ".join(n["cidr"] + (" (private)" if n["private"] else "") for n in data["networks"])
    out.print(f"{'networks':<14} {nets or '-'}")
    out.print(f"{'next hop':<14} {data['relay'] or '(global relay)'}")
    out.print(
        f"{'retention':<14} archive {data['archive_retention_days']} days, "
        f"portal {data['portal_retention_days']} days"
    )
    out.print(
        f"{'notices':<14} from {data['notification_from'] or '(default)'}, subject "
        f"{'hidden' if data['hide_subject'] else 'shown'}, color {data['brand_color']}"
    )
    out.print(f"{'created':<14} {data['created_at']} UTC")


@tenant.command("update")
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
    networks: tuple[str, ...],
    private_networks: tuple[str, ...],
    config: str | None,
    as_json: bool,
) -> None:
    """Change a tenant's branding, notice, key look-up, next hop, retention and network
    settings."""
    from archive import retention
    from archive.services import Services
    from core.accounts.networks import add_network
    from core.accounts.tenant_settings import update_tenant
    from core.accounts.tenants import find_tenant

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
                )
                changes.update(
                    await retention.set_tenant_retention(
                        s, t, "cli", archive=archive_retention, portal=portal_retention
                    )
                )
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


def _standing_command(name: str, standing: str, help_text: str) -> None:
    @tenant.command(name, help=help_text)
    @click.argument("ref")
    @config_option
    @json_option
    @click.pass_context
    def command(ctx: click.Context, ref: str, config: str | None, as_json: bool) -> None:
        from archive.services import Services
        from core.accounts.tenants import find_tenant, set_standing

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


from sealmail.cli_users import user  # noqa: E402 - it builds on the helpers above

cli.add_command(user)

from sealmail.cli_keys import keys  # noqa: E402 - it builds on the helpers above

cli.add_command(keys)

from sealmail.cli_policy import policy  # noqa: E402 - it builds on the helpers above

cli.add_command(policy)

from sealmail.cli_queue import queue  # noqa: E402 - it builds on the helpers above

cli.add_command(queue)

from sealmail.cli_archive import archive  # noqa: E402 - it builds on the helpers above

cli.add_command(archive)
import sealmail.cli_retention  # noqa: E402, F401, I001 - adds archive sweep, verify and hold

from sealmail.cli_key import key as key_group  # noqa: E402 - it builds on the helpers above

cli.add_command(key_group)

from sealmail.cli_billing import billing  # noqa: E402 - it builds on the helpers above

cli.add_command(billing)

from sealmail.cli_support import support  # noqa: E402 - it builds on the helpers above

cli.add_command(support)


def main() -> None:
    cli(prog_name="sealmail")
