"""``sealmail user add|list|remove``: a tenant's portal users and their role.

``admin`` may do everything under ``/admin``; ``compliance`` sees and decides the
quarantine; ``sender`` has no admin access.
"""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from sealmail.cli.common import (
    Failure,
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


@click.group()
def user() -> None:
    """A tenant's portal users (admin, compliance, sender)."""


def _user_dict(u: Any) -> dict[str, Any]:
    return {"id": u.id, "email": u.email, "role": u.role, "created_at": _ts(u.created_at)}


@user.command("add")
@click.argument("tenant_ref", metavar="TENANT")
@click.argument("email")
@click.option(
    "--role",
    type=click.Choice(["admin", "compliance", "sender"]),
    default="sender",
    show_default=True,
)
@config_option
@json_option
@click.pass_context
@handles_errors
def user_add(
    ctx: click.Context, tenant_ref: str, email: str, role: str, config: str | None, as_json: bool
) -> None:
    """Add a user to a tenant."""
    from sqlalchemy import func, select

    from core.accounts.tenants import find_tenant
    from core.accounts.users import add_user
    from core.models import User
    from core.services import Services

    address = email_argument(email)

    async def go() -> dict[str, Any]:
        svc = Services.open(_settings(ctx))
        try:
            async with svc.db.session() as s:
                t = await find_tenant(s, tenant_ref)
                stmt = select(User).where(User.tenant_id == t.id, func.lower(User.email) == address)
                if (await s.execute(stmt)).scalar() is not None:
                    raise Failure(f"{address} is already a user of {t.name}")
                u = await add_user(s, t, address, role)
                await s.commit()
                return {**_user_dict(u), "tenant": t.name}
        finally:
            await svc.close()

    data = _run(go())
    if as_json:
        _print_json(data)
    else:
        out.print(f"added {data['email']} to {data['tenant']} as {data['role']} ({data['id']})")


@user.command("list")
@click.argument("tenant_ref", metavar="TENANT")
@config_option
@json_option
@click.pass_context
@handles_errors
def user_list(ctx: click.Context, tenant_ref: str, config: str | None, as_json: bool) -> None:
    """List a tenant's users."""
    from sqlalchemy import select

    from core.accounts.tenants import find_tenant
    from core.models import User
    from core.services import Services

    async def go() -> list[dict[str, Any]]:
        svc = Services.open(_settings(ctx))
        try:
            async with svc.db.session() as s:
                t = await find_tenant(s, tenant_ref)
                rows = await s.execute(
                    select(User).where(User.tenant_id == t.id).order_by(User.email)
                )
                return [_user_dict(u) for u in rows.scalars()]
        finally:
            await svc.close()

    rows = _run(go())
    if as_json:
        _print_json(rows)
        return
    if not rows:
        out.print("no users")
        return
    table = Table("email", "role", "id", "created (UTC)")
    for r in rows:
        table.add_row(r["email"], r["role"], r["id"], r["created_at"])
    out.print(table)


@user.command("remove")
@click.argument("tenant_ref", metavar="TENANT")
@click.argument("email")
@config_option
@json_option
@click.pass_context
@handles_errors
def user_remove(
    ctx: click.Context, tenant_ref: str, email: str, config: str | None, as_json: bool
) -> None:
    """Remove a user from a tenant; their admin sessions end at once."""
    from core.accounts.tenants import find_tenant
    from core.accounts.users import find_user, remove_user
    from core.errors import PermanentError
    from core.services import Services

    address = email.strip().lower()

    async def go() -> dict[str, Any]:
        svc = Services.open(_settings(ctx))
        try:
            async with svc.db.session() as s:
                t = await find_tenant(s, tenant_ref)
                u = await find_user(s, t.id, address)
                if u is None:
                    raise Failure(f"{address} is not a user of {t.name}")
                try:
                    await remove_user(s, t.id, u.id, "cli")
                except PermanentError as exc:
                    raise Failure(str(exc)) from None
                await s.commit()
                return {"id": u.id, "email": address, "tenant": t.name, "removed": True}
        finally:
            await svc.close()

    data = _run(go())
    if as_json:
        _print_json(data)
    else:
        out.print(f"removed {data['email']} from {data['tenant']}")
