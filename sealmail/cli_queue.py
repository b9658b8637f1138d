"""``sealmail queue list|show|retry|hold|release``: the outbound queue (SPEC §1).

A queue id names an outbox item (what delivery sends) or an incoming message (what the
pipeline still works on); for a message, ``retry``, ``hold`` and ``release`` act on the
outbox items it produced. Nothing here ever prints message content. Every change is
written to the audit log.

Held recipients are skipped by delivery and do not expire while held; released, they are
due at once, and an item already past ``queue_lifetime`` gets one ``queue_max_backoff``
more so it is tried before it bounces.
"""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from sealmail.cli import Failure, _print_json, _run, _settings, _ts, config_option, json_option, out

STATES = ("queued", "deferred", "held", "sent", "bounced", "rerouted", "processing")
WAITING = ("queued", "deferred", "held")


@click.group()
def queue() -> None:
    """The outbound queue."""


def _services(ctx: click.Context) -> Any:
    from archive.services import Services

    return Services.open(_settings(ctx))


@queue.command("list")
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
            (r["last_reply"] or "")[:60],
        )
    out.print(table)
    out.print(f"{len(rows)} entries")


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

    from core import outbox
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
        if data["last_error"]:
            out.print(f"{indent}last error {data['last_error']}")
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


@queue.command("show")
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


async def _act(ctx: click.Context, queue_id: str | None, action: str) -> dict[str, Any]:
    """Apply ``action`` (retry, hold, release) to ``queue_id`` (``None``: whole queue)."""
    from sqlalchemy import update

    from core import outbox
    from core.audit import audit
    from core.models import Message

    svc = _services(ctx)
    try:
        async with svc.db.session() as s:
            tenant_id: str | None = None
            ids: list[str] | None = None
            restarted = False
            if queue_id is not None:
                entry = await _lookup(s, queue_id)
                tenant_id = entry["tenant_id"]
                if entry["type"] == "outbox":
                    ids = [queue_id]
                else:
                    ids = [o["queue_id"] for o in entry["outbox"]]
                    if action == "retry" and entry["state"] == "received":
                        result = await s.execute(
                            update(Message)
                            .where(
                                Message.id == queue_id,
                                Message.state == "received",
                                Message.claimed_by == "",
                            )
                            .values(next_attempt_at=0.0)
                        )
                        restarted = getattr(result, "rowcount", 0) == 1
            if action == "retry":
                count = await outbox.retry_now(s, ids)
            elif action == "hold":
                count = await outbox.hold(s, ids or [])
            else:
                grace = svc.settings.queue_max_backoff
                count = await outbox.release_held(s, ids or [], grace)
            if count or restarted:
                await audit(
                    s,
                    tenant_id,
                    "cli",
                    f"queue.{action}",
                    queue_id or "*",
                    recipients=count,
                    message_restarted=restarted,
                )
            await s.commit()
            return {
                "queue_id": queue_id,
                "action": action,
                "recipients": count,
                "message_restarted": restarted,
            }
    finally:
        await svc.close()


def _report(data: dict[str, Any], as_json: bool, done: str, nothing: str) -> None:
    if as_json:
        _print_json(data)
        return
    where = data["queue_id"] or "the queue"
    if data["recipients"] or data["message_restarted"]:
        line = f"{where}: {done} {data['recipients']} recipient(s)"
        if data["message_restarted"]:
            line += "; message processing restarted now"
        out.print(line)
    else:
        out.print(f"{where}: {nothing}")


@queue.command("retry")
@click.argument("queue_id", required=False)
@click.option("--all", "retry_all", is_flag=True, help="Every deferred recipient.")
@config_option
@json_option
@click.pass_context
def queue_retry(
    ctx: click.Context, queue_id: str | None, retry_all: bool, config: str | None, as_json: bool
) -> None:
    """Try deferred recipients now (one queue id, or --all)."""
    if bool(queue_id) == retry_all:
        raise click.UsageError("give a QUEUE_ID or --all (not both)")
    data = _run(_act(ctx, queue_id, "retry"))
    _report(data, as_json, "due now:", "nothing deferred to retry")


@queue.command("hold")
@click.argument("queue_id")
@config_option
@json_option
@click.pass_context
def queue_hold(ctx: click.Context, queue_id: str, config: str | None, as_json: bool) -> None:
    """Hold pending recipients: delivery skips them; they do not expire while held."""
    data = _run(_act(ctx, queue_id, "hold"))
    _report(data, as_json, "held", "nothing to hold (no queued or deferred recipient idle)")


@queue.command("release")
@click.argument("queue_id")
@config_option
@json_option
@click.pass_context
def queue_release(ctx: click.Context, queue_id: str, config: str | None, as_json: bool) -> None:
    """Release held recipients: they are due at once."""
    data = _run(_act(ctx, queue_id, "release"))
    _report(data, as_json, "released", "nothing held")
