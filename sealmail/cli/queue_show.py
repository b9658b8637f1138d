"""``sealmail queue show``: what a queue id names (an outbox item or an incoming message)
as printable data, and how it is printed."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from sealmail.cli.common import (
    Failure,
    _print_json,
    _run,
    _services,
    _ts,
    config_option,
    json_option,
    out,
)
from sealmail.cli.queue_list import WAITING


def _recipient(r: Any) -> dict[str, Any]:
    return {
        "recipient": r.rcpt,
        "state": r.state,
        "attempts": r.attempts,
        "next_attempt": _ts(r.next_attempt_at) if r.state in WAITING else "-",
        "last_reply": r.last_reply,
        "warned_at": _ts(r.warned_at) if r.warned_at else None,
    }


async def _outbox_entry(s: Any, item: Any, names: dict[str, str]) -> dict[str, Any]:
    from core import outbox

    found = await outbox.get_item(s, item.id)
    assert found is not None
    return {
        "queue_id": item.id,
        "type": "outbox",
        "kind": item.kind,
        "tenant": names.get(item.tenant_id or "", "-"),
        "tenant_id": item.tenant_id,
        "message_id": item.message_id,
        "from": item.mail_from or "<>",
        "require_tls": bool(item.require_tls),
        "created_at": _ts(item.created_at),
        "expires_at": _ts(item.expires_at),
        "recipients": [_recipient(r) for r in found[1]],
    }


async def _lookup(s: Any, queue_id: str) -> dict[str, Any]:
    """What ``queue_id`` names, as printable data; a one-line failure when nothing."""
    from sqlalchemy import select

    from core import error_kinds, outbox
    from core.models import Message, MessageRecipient, OutboxItem, Tenant

    names = dict((await s.execute(select(Tenant.id, Tenant.name))).all())
    item = await s.get(OutboxItem, queue_id)
    if item is not None:
        return await _outbox_entry(s, item, names)
    message = await s.get(Message, queue_id)
    if message is None:
        raise Failure(f"no queue entry {queue_id!r}")
    rcpts = (
        (
            await s.execute(
                select(MessageRecipient)
                .where(MessageRecipient.message_id == queue_id)
                .order_by(MessageRecipient.id)
            )
        )
        .scalars()
        .all()
    )
    return {
        "queue_id": message.id,
        "type": "message",
        "kind": "incoming",
        "tenant": names.get(message.tenant_id, "-"),
        "tenant_id": message.tenant_id,
        "message_id": message.id,
        "from": message.mail_from or "<>",
        "state": message.state,
        "disposition": message.disposition,
        "size": message.size,
        "attempts": message.attempts,
        "next_attempt": _ts(message.next_attempt_at) if message.state == "received" else "-",
        "last_error": message.last_error,
        "error_kind": error_kinds.kind_of(message.last_error),
        "status": error_kinds.status_of_message(
            message.state, message.last_error, message.attempts
        ),
        "created_at": _ts(message.received_at),
        "processed_at": _ts(message.processed_at),
        "recipients": [
            {
                "recipient": r.rcpt,
                "state": r.state,
                "disposition": r.disposition,
                "reason": r.reason,
            }
            for r in rcpts
        ],
        "outbox": [
            await _outbox_entry(s, i, names) for i in await outbox.items_of_message(s, queue_id)
        ],
    }


def _print_entry(data: dict[str, Any], indent: str = "") -> None:
    out.print(f"{indent}queue id   {data['queue_id']}  ({data['kind']})")
    out.print(f"{indent}tenant     {data['tenant']}")
    out.print(f"{indent}from       {data['from']}")
    if data["type"] == "message":
        out.print(f"{indent}state      {data['state']}  attempts {data['attempts']}")
        out.print(f"{indent}received   {data['created_at']} UTC")
        if data["status"]:
            out.print(f"{indent}last error {data['status']}", markup=False)
        table = Table("to", "state", "disposition", "reason")
        for r in data["recipients"]:
            table.add_row(r["recipient"], r["state"], r["disposition"], r["reason"][:80])
        out.print(table)
        for entry in data["outbox"]:
            out.print("")
            _print_entry(entry, indent="  ")
        return
    if data["message_id"]:
        out.print(f"{indent}message    {data['message_id']}")
    out.print(f"{indent}created    {data['created_at']} UTC")
    out.print(f"{indent}expires    {data['expires_at']} UTC")
    table = Table("to", "state", "tries", "next (UTC)", "last reply")
    for r in data["recipients"]:
        table.add_row(
            r["recipient"], r["state"], str(r["attempts"]), r["next_attempt"], r["last_reply"]
        )
    out.print(table)


@click.command("show")
@click.argument("queue_id")
@config_option
@json_option
@click.pass_context
def queue_show(ctx: click.Context, queue_id: str, config: str | None, as_json: bool) -> None:
    """One outbox item or incoming message: envelope, times, per-recipient state."""

    async def go() -> dict[str, Any]:
        svc = _services(ctx)
        try:
            async with svc.db.session() as s:
                return await _lookup(s, queue_id)
        finally:
            await svc.close()

    data = _run(go())
    if as_json:
        _print_json(data)
    else:
        _print_entry(data)
