"""``sealmail tenant dns`` (the records a tenant publishes for its notices, checked live) and
``sealmail tenant dkim`` (its DKIM keys: list, ``--generate``, ``--rotate``,
``--activate [--force]``)."""

from __future__ import annotations

from typing import Any

import click

from sealmail.cli.common import _print_json, _run, _settings, _ts, config_option, json_option, out

SAYS = {"ok": "found", "different": "DIFFERENT", "missing": "MISSING", "unknown": "NOT CHECKED"}


@click.command("dns")
@click.argument("ref")
@config_option
@json_option
@click.pass_context
def tenant_dns(ctx: click.Context, ref: str, config: str | None, as_json: bool) -> None:
    """The DNS records the tenant should publish for its notices (DKIM, SPF, DMARC) and
    whether DNS shows each of them now."""
    from core.accounts.tenants import find_tenant
    from core.dkim import publish
    from core.services import Services

    async def go() -> dict[str, Any]:
        svc = Services.open(_settings(ctx))
        try:
            async with svc.db.session() as s:
                t = await find_tenant(s, ref)
                checks = await publish.checked(s, svc.settings, t)
                return {
                    "id": t.id,
                    "name": t.name,
                    "records": [c.as_dict() for c in checks],
                }
        finally:
            await svc.close()

    data = _run(go())
    if as_json:
        _print_json(data)
        return
    out.print(f"tenant {data['name']}: DNS records for its notices", markup=False)
    if not any(r["kind"] == "dkim" for r in data["records"]):
        out.print(
            f"  (no DKIM key yet: sealmail tenant dkim {data['name']} --generate)", markup=False
        )
    for r in data["records"]:
        label = r["kind"].upper()
        if r["kind"] == "dkim":
            label += f" ({r['key_state']} key)"
        out.print("", markup=False)
        out.print(f"{label}  [{SAYS[r['state']]}]  {r['says']}", markup=False)
        out.print(f"  name   {r['name']}", markup=False)
        out.print("  type   TXT", markup=False)
        out.print(f"  value  {r['value']}", markup=False)
        out.print(f"  why    {r['why']}", markup=False)


@click.command("dkim")
@click.argument("ref")
@click.option("--domain", default=None, help="Only this domain of the tenant.")
@click.option("--generate", "action", flag_value="generate", help="Make a first (pending) key.")
@click.option(
    "--rotate", "action", flag_value="rotate", help="Make a new pending key beside the active one."
)
@click.option(
    "--activate",
    "action",
    flag_value="activate",
    help="Switch to the pending key once DNS shows its record (the old one is retired).",
)
@click.option("--force", is_flag=True, help="With --activate: switch even if DNS does not show it.")
@config_option
@json_option
@click.pass_context
def tenant_dkim(
    ctx: click.Context,
    ref: str,
    domain: str | None,
    action: str | None,
    force: bool,
    config: str | None,
    as_json: bool,
) -> None:
    """The tenant's DKIM keys; with an option, make, rotate or switch them."""
    from core.accounts.tenants import find_tenant
    from core.dkim import keys, publish
    from core.services import Services

    if force and action != "activate":
        raise click.UsageError("--force goes with --activate")

    async def go() -> dict[str, Any]:
        svc = Services.open(_settings(ctx))
        try:
            async with svc.db.session() as s:
                t = await find_tenant(s, ref)
                changed: list[Any] = []
                if action in ("generate", "rotate"):
                    changed = await keys.generate(
                        s, svc.keyring, t.id, "cli", domain, rotate=action == "rotate"
                    )
                elif action == "activate":
                    changed = await publish.activate(
                        s, svc.keyring, svc.settings, t, "cli", domain, force=force
                    )
                await s.commit()
                rows = await keys.keys_of(s, t.id, domain)
                return {
                    "id": t.id,
                    "name": t.name,
                    "changed": [f"{k.selector}._domainkey.{k.domain}" for k in changed],
                    "keys": [
                        {
                            "domain": k.domain,
                            "selector": k.selector,
                            "state": k.state,
                            "algorithm": k.algorithm,
                            "created_at": k.created_at,
                            "activated_at": k.activated_at,
                            "retired_at": k.retired_at,
                        }
                        for k in rows
                    ],
                }
        finally:
            await svc.close()

    data = _run(go())
    if as_json:
        _print_json(data)
        return
    if action in ("generate", "rotate") and not data["changed"]:
        out.print(
            f"tenant {data['name']}: no key made (each domain already has a "
            + ("pending key" if action == "rotate" else "pending or active key")
            + ")"
        )
    for name in data["changed"]:
        verb = "now signs with" if action == "activate" else "new pending key, publish"
        out.print(f"tenant {data['name']}: {verb} {name}")
    if not data["keys"]:
        out.print(f"tenant {data['name']} has no DKIM key; make one with --generate")
    for k in data["keys"]:
        when = _ts(k["activated_at"] if k["state"] == "active" else k["created_at"])
        out.print(f"  {k['domain']:<30} {k['selector']:<22} {k['state']:<8} {when}")
