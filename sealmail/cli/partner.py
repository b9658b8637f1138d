"""``sealmail partner create|list|show``: MSP partners (resellers) that own tenants."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from sealmail.cli.common import _print_json, _ts, config_option, in_session, json_option, out


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

    async def go(svc: Any, s: Any) -> dict[str, Any]:
        p = await create_partner(s, name)
        await s.commit()
        return {"id": p.id, "name": p.name}

    data = in_session(ctx, go)
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

    async def go(svc: Any, s: Any) -> list[dict[str, Any]]:
        counts = dict(
            (
                await s.execute(select(Tenant.partner_id, func.count()).group_by(Tenant.partner_id))
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

    rows = in_session(ctx, go)
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

    async def go(svc: Any, s: Any) -> dict[str, Any]:
        p = await find_partner(s, ref)
        tenants = (await s.execute(select(Tenant).where(Tenant.partner_id == p.id))).scalars().all()
        from core.accounts.partner_users import list_partner_users

        people = await list_partner_users(s, p.id)
        return {
            "id": p.id,
            "name": p.name,
            "created_at": _ts(p.created_at),
            "nfr_max_users": p.nfr_max_users,
            "nfr_max_messages": p.nfr_max_messages,
            "people": [{"email": u.email, "role": u.role} for u in people],
            "tenants": [
                {
                    "id": t.id,
                    "name": t.name,
                    "plan": t.plan,
                    "trial_ends_on": t.trial_ends_on.isoformat() if t.trial_ends_on else None,
                    "standing": t.standing,
                }
                for t in tenants
            ],
        }

    data = in_session(ctx, go)
    if as_json:
        _print_json(data)
        return
    out.print(f"partner  {data['name']} ({data['id']})\ncreated  {data['created_at']} UTC")
    users, messages = data["nfr_max_users"], data["nfr_max_messages"]
    out.print(
        f"NFR      {users or 'any number of'} users, {messages or 'any number of'} messages a month"
    )
    for u in data["people"]:
        out.print(f"  person {u['email']} ({u['role']})")
    for t in data["tenants"]:
        trial = f" trial ends {t['trial_ends_on']}" if t["trial_ends_on"] else ""
        out.print(
            f"  tenant {t['name']} ({t['id']}) plan={t['plan']}{trial} standing={t['standing']}"
        )


@partner.command("update")
@click.argument("ref")
@click.option("--nfr-users", type=click.IntRange(min=0), default=None, help="Users per NFR tenant.")
@click.option(
    "--nfr-messages",
    type=click.IntRange(min=0),
    default=None,
    help="Messages a calendar month per NFR tenant.",
)
@config_option
@json_option
@click.pass_context
def partner_update(
    ctx: click.Context,
    ref: str,
    nfr_users: int | None,
    nfr_messages: int | None,
    config: str | None,
    as_json: bool,
) -> None:
    """Set the partner's not-for-resale agreement (0 removes a limit)."""
    from core.accounts.partners import find_partner
    from core.audit import audit

    async def go(svc: Any, s: Any) -> dict[str, Any]:
        p = await find_partner(s, ref)
        if nfr_users is not None:
            p.nfr_max_users = nfr_users or None
        if nfr_messages is not None:
            p.nfr_max_messages = nfr_messages or None
        limits = {"nfr_max_users": p.nfr_max_users, "nfr_max_messages": p.nfr_max_messages}
        await audit(s, None, "cli", "partner.nfr", p.id, **limits)
        await s.commit()
        return {"id": p.id, "name": p.name, **limits}

    data = in_session(ctx, go)
    if as_json:
        _print_json(data)
        return
    users = data["nfr_max_users"] or "no limit"
    messages = data["nfr_max_messages"] or "no limit"
    out.print(
        f"partner {data['name']}: NFR tenants may have {users} users, {messages} messages/month"
    )


@partner.group("user")
def partner_user() -> None:
    """Who may sign in to /partner."""


@partner_user.command("add")
@click.argument("ref")
@click.argument("email")
@click.option(
    "--role", type=click.Choice(["partner-admin", "partner-tech"]), default="partner-admin"
)
@config_option
@json_option
@click.pass_context
def partner_user_add(
    ctx: click.Context, ref: str, email: str, role: str, config: str | None, as_json: bool
) -> None:
    """Let EMAIL sign in to the partner's console with ROLE."""
    from core.accounts.partner_users import add_partner_user
    from core.accounts.partners import find_partner

    async def go(svc: Any, s: Any) -> dict[str, Any]:
        p = await find_partner(s, ref)
        u = await add_partner_user(s, p, email, role)
        await s.commit()
        return {"id": u.id, "partner": p.name, "email": u.email, "role": u.role}

    data = in_session(ctx, go)
    if as_json:
        _print_json(data)
    else:
        out.print(
            f"{data['email']} may sign in to /partner for {data['partner']} as {data['role']}"
        )


@partner_user.command("list")
@click.argument("ref")
@config_option
@json_option
@click.pass_context
def partner_user_list(ctx: click.Context, ref: str, config: str | None, as_json: bool) -> None:
    """The people who may sign in to the partner's console."""
    from core.accounts.partner_users import list_partner_users
    from core.accounts.partners import find_partner

    async def go(svc: Any, s: Any) -> list[dict[str, Any]]:
        p = await find_partner(s, ref)
        return [
            {"id": u.id, "email": u.email, "role": u.role, "created_at": _ts(u.created_at)}
            for u in await list_partner_users(s, p.id)
        ]

    rows = in_session(ctx, go)
    if as_json:
        _print_json(rows)
        return
    table = Table("id", "email", "role", "added (UTC)")
    for r in rows:
        table.add_row(r["id"], r["email"], r["role"], r["created_at"])
    out.print(table if rows else "nobody may sign in for this partner yet")


@partner_user.command("remove")
@click.argument("ref")
@click.argument("email")
@config_option
@click.pass_context
def partner_user_remove(ctx: click.Context, ref: str, email: str, config: str | None) -> None:
    """Stop EMAIL signing in to the partner's console."""
    from core.accounts.partner_users import find_partner_user, remove_partner_user
    from core.accounts.partners import find_partner
    from core.errors import NotFound

    async def go(svc: Any, s: Any) -> str:
        p = await find_partner(s, ref)
        u = await find_partner_user(s, p.id, email)
        if u is None:
            raise NotFound(f"{email} does not work for {p.name}")
        await remove_partner_user(s, p.id, u.id, "cli")
        await s.commit()
        return u.email

    out.print(f"{in_session(ctx, go)} removed")


@partner.group("key")
def partner_key() -> None:
    """The partner's API keys (scope partner: its tenants through /api/v1/tenants)."""


@partner_key.command("add")
@click.argument("ref")
@click.argument("label")
@config_option
@json_option
@click.pass_context
def partner_key_add(
    ctx: click.Context, ref: str, label: str, config: str | None, as_json: bool
) -> None:
    """Make a partner API key named LABEL; the key is shown only now."""
    from core.accounts.partner_users import create_partner_key, partner_key_id
    from core.accounts.partners import find_partner

    async def go(svc: Any, s: Any) -> dict[str, Any]:
        p = await find_partner(s, ref)
        key, row = await create_partner_key(s, p.id, label, "cli")
        await s.commit()
        return {
            "partner": p.name,
            "label": row.label,
            "id": partner_key_id(row),
            "key": key,
        }

    data = in_session(ctx, go)
    if as_json:
        _print_json(data)
    else:
        out.print(f"partner key {data['label']} for {data['partner']} (shown only now):")
        out.print(data["key"], soft_wrap=True)
