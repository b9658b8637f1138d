"""``sealmail support ...``: the support desk at the terminal (SPEC §8).

``verify EMAIL`` checks a caller's PIN, read from the terminal without echo or from standard
input — never from the command line, where it would stay in shell history and ``ps``. It
prints match or no match, the account's standing and what the desk may do; exit 0 on a
match, 1 otherwise. ``agent add|list|remove|key`` manages who may sign in at ``/support``;
``letter`` writes the PDF for a caller with no contact record.
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from sealmail.cli import (
    Failure,
    _print_json,
    _run,
    _settings,
    _ts,
    config_option,
    handles_errors,
    json_option,
    out,
)


@click.group()
def support() -> None:
    """The support desk: check a caller's PIN, desk agents, the letter."""


def _address(email: str, hint: str = "EMAIL") -> str:
    address = email.strip().lower()
    local, _, domain = address.partition("@")
    if (
        address.count("@") != 1
        or not local
        or "." not in domain
        or any(c.isspace() or not c.isprintable() for c in address)
    ):
        raise click.BadParameter(f"not an email address: {email!r}", param_hint=hint)
    return address


def _read_pin() -> str:
    """The PIN from the terminal (hidden) or one line of standard input."""
    if sys.stdin.isatty():
        try:
            pin = getpass.getpass("PIN the caller gives: ")
        except (EOFError, KeyboardInterrupt):
            raise Failure("no PIN given") from None
    else:
        pin = sys.stdin.readline(200)
    pin = pin.strip()
    if not pin:
        raise Failure("no PIN given: type it at the prompt or pipe it on standard input")
    return pin


def _default_agent() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in this environment
        user = str(os.getuid())
    return f"cli:{user}"


@support.command("verify")
@click.argument("email")
@click.argument("extra", nargs=-1, required=False, metavar="")
@click.option("--account", default=None, help="Only this billing account id.")
@click.option(
    "--agent", default=None, help="Who is checking, for the audit log (default cli:$USER)."
)
@config_option
@json_option
@click.pass_context
@handles_errors
def verify(
    ctx: click.Context,
    email: str,
    extra: tuple[str, ...],
    account: str | None,
    agent: str | None,
    config: str | None,
    as_json: bool,
) -> None:
    """Check a caller's PIN (read from the terminal or standard input, never an argument)."""
    if extra:
        raise click.UsageError(
            "the PIN is never an argument: type it at the prompt or pipe it on standard input"
        )
    address = _address(email)
    pin = _read_pin()

    from archive.services import Services
    from billing_hooks import support as desk
    from portal.support import email_key, notify_locked

    settings = _settings(ctx)

    async def go() -> dict[str, Any]:
        svc = Services.open(settings)
        try:
            async with svc.db.session() as s:
                result = await desk.check_pin(
                    s, email_key(svc), address, pin,
                    agent=agent or _default_agent(), account_id=account,
                )  # fmt: skip
                await notify_locked(svc, settings, s, result.locked_now)
                await s.commit()
                return result.as_dict()
        finally:
            await svc.close()

    data = _run(go())
    if as_json:
        _print_json(data)
        ctx.exit(0 if data["match"] else 1)
    if data["match"]:
        out.print(f"match: {data['account']} (standing: {data['standing']})")
        table = Table("action", "allowed", "why")
        for p in data["actions"]:
            table.add_row(p["label"], "yes" if p["allowed"] else "REFUSED", p["why"])
        out.print(table)
        return
    why = {
        "no_match": (
            f"no match ({data['failures_left']} "
            f"{'try' if data['failures_left'] == 1 else 'tries'} left before the PIN locks)"
        ),
        "locked": "locked: too many wrong PINs; the contact must set a new one at /pin",
        "no_pin": "no match: the contact has not set a PIN yet (they can at /pin)",
        "no_contact": "no contact record for this address (offer the letter)",
    }[data["result"]]
    if data["result"] == "no_match" and data["locked_now"]:
        why = "no match; the PIN is now locked and the contact has been emailed"
    raise Failure(why)


@support.group("agent")
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
    address = _address(email)

    from archive.services import Services
    from billing_hooks import support as desk
    from core.accounts.partners import find_partner

    async def go() -> dict[str, Any]:
        svc = Services.open(_settings(ctx))
        try:
            async with svc.db.session() as s:
                p = await find_partner(s, partner) if partner else None
                row, key = await desk.add_agent(s, address, p)
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
    address = _address(email)

    from archive.services import Services
    from billing_hooks import support as desk

    async def go() -> str:
        svc = Services.open(_settings(ctx))
        try:
            async with svc.db.session() as s:
                key = await desk.new_agent_key(s, address)
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
    from archive.services import Services
    from billing_hooks import support as desk
    from core.models import Partner

    async def go() -> list[dict[str, Any]]:
        svc = Services.open(_settings(ctx))
        try:
            async with svc.db.session() as s:
                rows = []
                for a in await desk.list_agents(s):
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
    address = _address(email)

    from archive.services import Services
    from billing_hooks import support as desk

    async def go() -> None:
        svc = Services.open(_settings(ctx))
        try:
            async with svc.db.session() as s:
                await desk.remove_agent(s, address)
                await s.commit()
        finally:
            await svc.close()

    _run(go())
    out.print(f"removed support agent {address}")


@support.command("letter")
@click.argument("email")
@click.option("--name", default="", help="The caller's name.")
@click.option("--named", default="", help="Tenant name or domain the caller named.")
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, writable=True),
    required=True,
    help="Where to write the PDF.",
)
@config_option
@json_option
@click.pass_context
@handles_errors
def letter(
    ctx: click.Context,
    email: str,
    name: str,
    named: str,
    out_path: str,
    config: str | None,
    as_json: bool,
) -> None:
    """Write the PDF letter for a caller with no contact record."""
    address = _address(email)

    from archive.services import Services
    from branding.support_letter import render_letter
    from core.audit import audit
    from portal.support import build_letter

    settings = _settings(ctx)

    async def go() -> dict[str, Any]:
        svc = Services.open(settings)
        try:
            async with svc.db.session() as s:
                info = await build_letter(s, settings, address, name, named)
                await audit(s, None, _default_agent(), "support.letter", info.reference)
                await s.commit()
        finally:
            await svc.close()
        return {"reference": info.reference, "account": info.account_name, "path": out_path,
                "pdf": render_letter(info)}  # fmt: skip

    data = _run(go())
    try:
        Path(out_path).write_bytes(data.pop("pdf"))
    except OSError as exc:
        raise Failure(f"cannot write {out_path}: {exc.strerror}") from None
    if as_json:
        _print_json(data)
    else:
        about = f" for {data['account']}" if data["account"] else ""
        out.print(f"wrote letter {data['reference']}{about} to {data['path']}")
