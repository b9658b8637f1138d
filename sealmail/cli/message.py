"""``sealmail message show|revoke|expire MESSAGE_ID``: a sealed message's recipients, their
portal access (live, revoked, expired) and events; revoke for one recipient or all; set
when access ends. Changes go through :mod:`conversations.control` (recorded as message
events and audited, actor ``cli``)."""

from __future__ import annotations

from typing import Any

import click

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


@click.group("message")
def message() -> None:
    """Sealed messages: who can read them, what happened, revoke and expiry."""


def _access_state(a: Any, at: float) -> str:
    if a.revoked:
        return "revoked"
    if a.expires_at <= at:
        return "expired"
    return "live"


def _event(e: Any) -> dict[str, Any]:
    from conversations import events

    detail = events.detail_of(e)
    return {
        "kind": e.kind,
        "recipient": e.recipient,
        "actor": e.actor,
        "at": _ts(e.at),
        "at_epoch": e.at,
        "detail": detail,
        "text": events.sentence(e, lambda t: f"{_ts(t)} UTC"),
    }


async def _show(svc: Any, message_id: str, recipient: str | None) -> dict[str, Any]:
    from sqlalchemy import select

    from conversations import control, events
    from core.models import MessageRecipient, Tenant, now

    async with svc.db.session() as s:
        msg = await control.message_of(s, None, message_id)
        tenant = await s.get(Tenant, msg.tenant_id)
        rows = await control.accesses(s, msg, recipient)
        if recipient and not rows:
            raise Failure(f"{recipient} has no portal access to message {msg.id}")
        all_events = [_event(e) for e in await events.of_message(s, msg.tenant_id, msg.id)]
        rcpts = (
            (await s.execute(select(MessageRecipient).where(MessageRecipient.message_id == msg.id)))
            .scalars()
            .all()
        )
    at = now()
    with_access = {a.recipient for a in rows}
    return {
        "id": msg.id,
        "tenant": tenant.name if tenant else msg.tenant_id,
        "tenant_id": msg.tenant_id,
        "from": msg.mail_from or "<>",
        "received_at": _ts(msg.received_at),
        "state": msg.state,
        "origin": msg.origin,
        "thread_id": msg.thread_id,
        "parent_id": msg.parent_id,
        "receipt": bool(msg.receipt),
        "reply_mode": msg.reply_mode or (tenant.reply_default if tenant else ""),
        "forward_mode": msg.forward_mode or (tenant.forward_default if tenant else ""),
        "recipients": [
            {
                "recipient": a.recipient,
                "state": _access_state(a, at),
                "expires_at": _ts(a.expires_at),
                "expires_at_epoch": a.expires_at,
                "revoked_at": _ts(a.revoked_at) if a.revoked else None,
                "revoked_by": a.revoked_by if a.revoked else None,
                "first_opened_at": _ts(a.first_opened_at) if a.first_opened_at else None,
                "events": [e for e in all_events if e["recipient"] == a.recipient],
            }
            for a in rows
        ],
        "not_in_portal": []
        if recipient
        else [
            {"recipient": r.rcpt, "disposition": r.disposition or r.state}
            for r in rcpts
            if r.rcpt.strip().lower() not in with_access
        ],
    }


_DISPOSITION_WORDS = {
    "clear": "delivered by mail",
    "tls": "delivered by mail over verified TLS",
    "pgp": "delivered encrypted with OpenPGP",
    "smime": "delivered encrypted with S/MIME",
    "pdf": "sealed to the portal and sent as an encrypted PDF",
    "hold": "held for a compliance officer",
    "reject": "refused by the policy",
    "pending": "not processed yet",
}


def _print_show(data: dict[str, Any]) -> None:
    out.print(
        f"Message {data['id']} of {data['tenant']}, from {data['from']}, "
        f"received {data['received_at']} UTC ({data['state']}).",
        markup=False,
    )
    out.print(
        f"Recipients may reply: {data['reply_mode']}; forward: {data['forward_mode']}; "
        f"'opened' mail to the sender: {'yes' if data['receipt'] else 'no'}.",
        markup=False,
    )
    if not data["recipients"]:
        out.print("Nobody has portal access to this message.")
    for r in data["recipients"]:
        if r["state"] == "revoked":
            state = f"revoked at {r['revoked_at']} UTC" + (
                f" by {r['revoked_by']}" if r["revoked_by"] else ""
            )
        elif r["state"] == "expired":
            state = f"expired at {r['expires_at']} UTC"
        else:
            state = f"can read it until {r['expires_at']} UTC"
        out.print(f"{r['recipient']}: {state}.", markup=False)
        for e in r["events"]:
            out.print(f"  {e['at']} UTC  {e['text']}", markup=False)
    for r in data["not_in_portal"]:
        words = _DISPOSITION_WORDS.get(r["disposition"], r["disposition"])
        out.print(f"{r['recipient']}: {words} (no portal access).", markup=False)


async def _has_access(s: Any, msg: Any) -> None:
    """A message nobody reads in the portal (delivered by mail, held...) has nothing to
    revoke or expire: a one-line failure rather than a silent success."""
    from conversations import control

    if not await control.accesses(s, msg):
        raise Failure(f"message {msg.id} has no portal access to change")


def _recipient_option(f: Any) -> Any:
    return click.option(
        "--recipient", default=None, help="Only this recipient's access (default: everyone's)."
    )(f)


@message.command("show")
@click.argument("message_id")
@_recipient_option
@config_option
@json_option
@click.pass_context
def show(
    ctx: click.Context, message_id: str, recipient: str | None, config: str | None, as_json: bool
) -> None:
    """Who can read a sealed message, until when, and what happened (events)."""

    async def go() -> dict[str, Any]:
        svc = _services(ctx)
        try:
            return await _show(svc, message_id, recipient)
        finally:
            await svc.close()

    data = _run(go())
    if as_json:
        _print_json(data)
    else:
        _print_show(data)


@message.command("revoke")
@click.argument("message_id")
@_recipient_option
@config_option
@json_option
@click.pass_context
def revoke(
    ctx: click.Context, message_id: str, recipient: str | None, config: str | None, as_json: bool
) -> None:
    """Revoke portal access to a message for one recipient or all; at once."""
    from conversations import control

    async def go() -> dict[str, Any]:
        svc = _services(ctx)
        try:
            async with svc.db.write_gate.hold(), svc.db.session() as s:
                msg = await control.message_of(s, None, message_id)
                await _has_access(s, msg)
                done = await control.revoke(s, msg, "cli", recipient)
                await s.commit()
                return {"id": msg.id, "revoked": done}
        finally:
            await svc.close()

    data = _run(go())
    if as_json:
        _print_json(data)
    elif data["revoked"]:
        for address in data["revoked"]:
            out.print(f"{address} can no longer open message {data['id']}.", markup=False)
    else:
        out.print(f"Nothing to revoke: access to message {data['id']} was already revoked.")


@message.command("expire")
@click.argument("message_id")
@_recipient_option
@click.option(
    "--at",
    "when",
    default=None,
    help="When access ends: a duration from now (2h, 7d) or an RFC 3339 date (default: now).",
)
@config_option
@json_option
@click.pass_context
def expire(
    ctx: click.Context,
    message_id: str,
    recipient: str | None,
    when: str | None,
    config: str | None,
    as_json: bool,
) -> None:
    """Set when portal access to a message ends (for one recipient or all)."""
    from conversations import control
    from conversations.options import parse_when
    from core.models import now

    at = now()
    if when is not None:
        try:
            at = parse_when(when, at)
        except ValueError as exc:
            raise Failure(f"--at: {exc}") from None

    async def go() -> dict[str, Any]:
        svc = _services(ctx)
        try:
            async with svc.db.write_gate.hold(), svc.db.session() as s:
                msg = await control.message_of(s, None, message_id)
                await _has_access(s, msg)
                changed = await control.set_expiry(s, msg, "cli", at, recipient)
                await s.commit()
                return {
                    "id": msg.id,
                    "expires_at": _ts(at),
                    "expires_at_epoch": at,
                    "changed": changed,
                }
        finally:
            await svc.close()

    data = _run(go())
    if as_json:
        _print_json(data)
    elif not data["changed"]:
        out.print(f"Nobody has portal access to message {data['id']}.")
    else:
        for address in data["changed"]:
            out.print(
                f"{address} can read message {data['id']} until {data['expires_at']} UTC.",
                markup=False,
            )
