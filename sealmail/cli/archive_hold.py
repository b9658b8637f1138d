"""``sealmail archive hold place|list|release``: legal holds. Nothing under a hold is
shredded or deleted; every action is in the audit log; nothing here prints message content.
"""

from __future__ import annotations

from typing import Any

import click

from sealmail.cli.common import (
    Failure,
    _print_json,
    _run,
    _services,
    _tenant_id,
    _ts,
    config_option,
    json_option,
    out,
)


@click.group("hold")
def hold() -> None:
    """Legal holds: nothing under a hold is shredded or deleted."""


@hold.command("place")
@click.argument("tenant_ref", metavar="TENANT")
@click.option("--name", required=True, help="What the hold is called (e.g. a case number).")
@click.option("--reason", default="", help="Why (kept with the hold).")
@click.option("--all", "whole_tenant", is_flag=True, help="Hold everything of the tenant.")
@click.option("--message", "message", default="", help="Hold one message (entry or queue id).")
@click.option("--from", "sender", default="", help="Search hold: sender address or domain.")
@click.option("--to", "recipient", default="", help="Search hold: recipient address or domain.")
@click.option("--subject", default="", help="Search hold: subject words (all must match).")
@click.option("--after", default="", help="Search hold: received on or after (YYYY-MM-DD).")
@click.option("--before", default="", help="Search hold: received before (YYYY-MM-DD).")
@click.option("--has-attachment", is_flag=True, help="Search hold: with attachments only.")
@click.option("--decision", default="", help="Search hold: policy decision.")
@click.option("--by", "actor", default="cli", help="Who places the hold (for the audit log).")
@config_option
@json_option
@click.pass_context
def hold_place(
    ctx: click.Context,
    tenant_ref: str,
    name: str,
    reason: str,
    whole_tenant: bool,
    message: str,
    sender: str,
    recipient: str,
    subject: str,
    after: str,
    before: str,
    has_attachment: bool,
    decision: str,
    actor: str,
    config: str | None,
    as_json: bool,
) -> None:
    """Place a legal hold: --all (the tenant), --message ID, or search criteria (the entries
    matching now are held; the criteria are kept only as a keyed hash)."""
    from archive import holds, search

    searching = any((sender, recipient, subject, after, before, has_attachment, decision))
    if sum((whole_tenant, bool(message), searching)) != 1:
        raise click.UsageError("give exactly one of --all, --message ID or search criteria")
    try:
        query = (
            search.Query.from_params(
                {
                    "from": sender,
                    "to": recipient,
                    "subject": subject,
                    "after": after,
                    "before": before,
                    "has_attachment": "1" if has_attachment else "",
                    "decision": decision,
                }
            )
            if searching
            else None
        )
    except search.QueryError as exc:
        raise Failure(str(exc)) from None
    kind = "tenant" if whole_tenant else "message" if message else "search"

    async def go() -> dict[str, Any]:
        from core.accounts.tenants import find_tenant

        svc = _services(ctx)
        try:
            async with svc.db.session() as s:
                t = await find_tenant(s, tenant_ref)
                h = await holds.place(
                    svc, s, t.id, actor, kind, name, reason, query=query, message=message
                )
                await s.commit()
                return holds.as_json(h)
        finally:
            await svc.close()

    data = _run(go())
    if as_json:
        _print_json(data)
    else:
        what = "the whole tenant" if kind == "tenant" else f"{data['items']} archived messages"
        out.print(f"legal hold {data['id']} placed on {what}")


@hold.command("list")
@click.option("--tenant", "tenant_ref", help="Only this tenant (name or id).")
@click.option("--all", "include_released", is_flag=True, help="Include released holds.")
@config_option
@json_option
@click.pass_context
def hold_list(
    ctx: click.Context,
    tenant_ref: str | None,
    include_released: bool,
    config: str | None,
    as_json: bool,
) -> None:
    """List legal holds in force (with --all, released ones too)."""
    from archive import holds

    async def go() -> list[dict[str, Any]]:
        svc = _services(ctx)
        try:
            tenant_id = await _tenant_id(svc, tenant_ref)
            async with svc.db.session() as s:
                rows = await holds.list_holds(s, tenant_id, include_released)
                return [holds.as_json(h) for h in rows]
        finally:
            await svc.close()

    rows = _run(go())
    if as_json:
        _print_json(rows)
        return
    if not rows:
        out.print("no legal holds")
        return
    for h in rows:
        covers = "whole tenant" if h["kind"] == "tenant" else f"{h['items']} messages"
        released = f", released {_ts(h['released_at'])} by {h['released_by']}"
        out.print(
            f"{h['id']}  {h['kind']:<7} {h['name']!r} ({covers}) tenant {h['tenant_id']}, "
            f"placed {_ts(h['placed_at'])} by {h['placed_by']}"
            + (released if h["released_at"] else "")
        )


@hold.command("release")
@click.argument("hold_id")
@click.option("--by", "actor", default="cli", help="Who releases it (for the audit log).")
@config_option
@json_option
@click.pass_context
def hold_release(
    ctx: click.Context, hold_id: str, actor: str, config: str | None, as_json: bool
) -> None:
    """Release a legal hold (what it covered is swept again once its retention is over)."""
    from archive import holds

    async def go() -> dict[str, Any]:
        svc = _services(ctx)
        try:
            async with svc.db.session() as s:
                h = await holds.release(s, None, hold_id, actor)
                await s.commit()
                return holds.as_json(h)
        finally:
            await svc.close()

    data = _run(go())
    if as_json:
        _print_json(data)
    else:
        out.print(f"legal hold {data['id']} released")
