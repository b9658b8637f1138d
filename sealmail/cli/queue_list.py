"""``sealmail queue list``: mail waiting to be sent, one row per recipient, and incoming
messages the pipeline still works on."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from sealmail.cli.common import _print_json, _run, _services, _ts, config_option, json_option, out

STATES = ("queued", "deferred", "held", "sent", "bounced", "rerouted", "processing")
WAITING = ("queued", "deferred", "held")


@click.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include sent and bounced recipients.")
@click.option("--state", type=click.Choice(STATES), help="Only recipients in this state.")
@click.option("--tenant", "tenant_ref", help="Only this tenant's mail (name or id).")
@config_option
@json_option
@click.pass_context
def queue_list(
    ctx: click.Context,
    show_all: bool,
    state: str | None,
    tenant_ref: str | None,
    config: str | None,
    as_json: bool,
) -> None:
    """List mail waiting to be sent (per recipient)."""
    from sqlalchemy import select

    from core import error_kinds
    from core.accounts.tenants import find_tenant
    from core.models import Message, OutboxItem, OutboxRecipient, Tenant

    async def go() -> list[dict[str, Any]]:
        svc = _services(ctx)
        try:
            async with svc.db.session() as s:
                names = dict((await s.execute(select(Tenant.id, Tenant.name))).all())
                tenant_id = (await find_tenant(s, tenant_ref)).id if tenant_ref else None
                rows: list[dict[str, Any]] = []
                if state != "processing":
                    stmt = (
                        select(OutboxRecipient, OutboxItem)
                        .join(OutboxItem, OutboxItem.id == OutboxRecipient.outbox_id)
                        .order_by(OutboxItem.created_at, OutboxRecipient.id)
                        .limit(10000)
                    )
                    if state:
                        stmt = stmt.where(OutboxRecipient.state == state)
                    elif not show_all:
                        stmt = stmt.where(OutboxRecipient.state.in_(WAITING))
                    if tenant_id:
                        stmt = stmt.where(OutboxItem.tenant_id == tenant_id)
                    rows += [
                        {
                            "queue_id": i.id,
                            "message_id": i.message_id,
                            "kind": i.kind,
                            "tenant": names.get(i.tenant_id or "", "-"),
                            "from": i.mail_from or "<>",
                            "recipient": r.rcpt,
                            "state": r.state,
                            "attempts": r.attempts,
                            "next_attempt": _ts(r.next_attempt_at),
                            "last_reply": r.last_reply,
                            "created_at": _ts(i.created_at),
                            "expires_at": _ts(i.expires_at),
                        }
                        for r, i in (await s.execute(stmt)).all()
                    ]
                if state in (None, "processing"):
                    stmt2 = select(Message).where(Message.state == "received").limit(10000)
                    if tenant_id:
                        stmt2 = stmt2.where(Message.tenant_id == tenant_id)
                    for m in (await s.execute(stmt2)).scalars():
                        rows.append(
                            {
                                "queue_id": m.id,
                                "message_id": m.id,
                                "kind": "incoming",
                                "tenant": names.get(m.tenant_id, "-"),
                                "from": m.mail_from or "<>",
                                "recipient": "-",
                                "state": "processing",
                                "attempts": m.attempts,
                                "next_attempt": _ts(m.next_attempt_at),
                                "last_reply": m.last_error,
                                "error_kind": error_kinds.kind_of(m.last_error),
                                "status": error_kinds.status_of_message(
                                    m.state, m.last_error, m.attempts
                                ),
                                "created_at": _ts(m.received_at),
                                "expires_at": "-",
                            }
                        )
                return rows
        finally:
            await svc.close()

    rows = _run(go())
    if as_json:
        _print_json(rows)
        return
    if not rows:
        out.print("queue is empty")
        return
    table = Table(
        "queue id", "kind", "tenant", "from", "to", "state", "tries", "next (UTC)", "reply"
    )
    for r in rows:
        table.add_row(
            r["queue_id"],
            r["kind"],
            r["tenant"],
            r["from"],
            r["recipient"],
            r["state"],
            str(r["attempts"]),
            r["next_attempt"],
            (r.get("status") or r["last_reply"] or "")[:60],
        )
    out.print(table)
    out.print(f"{len(rows)} entries")
