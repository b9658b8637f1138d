"""``sealmail partner create|list|show``: MSP partners (resellers) that own tenants."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from sealmail.cli.common import _print_json, _run, _settings, _ts, config_option, json_option, out


@click.group()
def partner() -> None:
    """MSP partners (resellers) that own tenants."""


@partner.command("create")
@click.argument("name")
@config_option
@json_option
@click.pass_context
def partner_create(ctx: click.Context, name: str, config: str | None, as_json: bool) -> None:
    """Create a partner."""
    from core.accounts.partners import create_partner
    from core.services import Services

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

    from core.accounts.partners import list_partners
    from core.models import Tenant
    from core.services import Services

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

    from core.accounts.partners import find_partner
    from core.models import Tenant
    from core.services import Services

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
