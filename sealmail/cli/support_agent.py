"""``sealmail support agent add|list|remove|key``: who may sign in at ``/support``."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from sealmail.cli.common import (
    _print_json,
    _run,
    _settings,
    _ts,
    config_option,
    email_argument,
    handles_errors,
    json_option,
    out,
)


@click.group("agent")
def agent() -> None:
    """Who may sign in at /support (operator desk, or one partner's desk with --partner)."""


def _agent_dict(a: Any, partner: str = "") -> dict[str, Any]:
    return {"email": a.email, "id": a.id, "partner": partner, "created_at": _ts(a.created_at)}


@agent.command("add")
@click.argument("email")
@click.option("--partner", default=None, help="An MSP's desk: sees only that partner's accounts.")
@config_option
@json_option
@click.pass_context
@handles_errors
def agent_add(
    ctx: click.Context, email: str, partner: str | None, config: str | None, as_json: bool
) -> None:
    """Add a desk agent; prints the agent key once."""
    address = email_argument(email)

    from core.accounts.partners import find_partner
    from core.services import Services
    from support import agents

    async def go() -> dict[str, Any]:
        svc = Services.open(_settings(ctx))
        try:
            async with svc.db.session() as s:
                p = await find_partner(s, partner) if partner else None
                row, key = await agents.add_agent(s, address, p)
                await s.commit()
                return {**_agent_dict(row, p.name if p else ""), "key": key}
        finally:
            await svc.close()

    data = _run(go())
    if as_json:
        _print_json(data)
        return
    scope = f"partner {data['partner']}" if data["partner"] else "every account"
    out.print(f"added support agent {data['email']} ({scope})")
    out.print(f"agent key (shown once): {data['key']}")


@agent.command("key")
@click.argument("email")
@config_option
@json_option
@click.pass_context
@handles_errors
def agent_key(ctx: click.Context, email: str, config: str | None, as_json: bool) -> None:
    """Give an agent a new key (the old one stops working); prints it once."""
    address = email_argument(email)

    from core.services import Services
    from support import agents

    async def go() -> str:
        svc = Services.open(_settings(ctx))
        try:
            async with svc.db.session() as s:
                key = await agents.new_agent_key(s, address)
                await s.commit()
                return key
        finally:
            await svc.close()

    key = _run(go())
    if as_json:
        _print_json({"email": address, "key": key})
    else:
        out.print(f"new agent key for {address} (shown once): {key}")


@agent.command("list")
@config_option
@json_option
@click.pass_context
@handles_errors
def agent_list(ctx: click.Context, config: str | None, as_json: bool) -> None:
    """List desk agents."""
    from core.models import Partner
    from core.services import Services
    from support import agents

    async def go() -> list[dict[str, Any]]:
        svc = Services.open(_settings(ctx))
        try:
            async with svc.db.session() as s:
                rows = []
                for a in await agents.list_agents(s):
                    p = await s.get(Partner, a.partner_id) if a.partner_id else None
                    rows.append(_agent_dict(a, p.name if p else ""))
                return rows
        finally:
            await svc.close()

    rows = _run(go())
    if as_json:
        _print_json(rows)
        return
    if not rows:
        out.print("no support agents")
        return
    table = Table("email", "desk", "id", "created (UTC)")
    for r in rows:
        table.add_row(r["email"], r["partner"] or "operator", r["id"], r["created_at"])
    out.print(table)


@agent.command("remove")
@click.argument("email")
@config_option
@click.pass_context
@handles_errors
def agent_remove(ctx: click.Context, email: str, config: str | None) -> None:
    """Remove a desk agent; their /support session ends at once."""
    address = email_argument(email)

    from core.services import Services
    from support import agents

    async def go() -> None:
        svc = Services.open(_settings(ctx))
        try:
            async with svc.db.session() as s:
                await agents.remove_agent(s, address)
                await s.commit()
        finally:
            await svc.close()

    _run(go())
    out.print(f"removed support agent {address}")
