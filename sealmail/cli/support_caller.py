"""``sealmail support verify|letter``: the desk and a caller (SPEC §8).

``verify EMAIL`` checks a caller's PIN, read from the terminal without echo or from standard
input — never from the command line, where it would stay in shell history and ``ps``. It
prints match or no match, the account's standing and what the desk may do; exit 0 on a
match, 1 otherwise. ``letter`` writes the PDF for a caller with no contact record.
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from sealmail.cli.common import (
    Failure,
    _print_json,
    _run,
    _settings,
    config_option,
    email_argument,
    handles_errors,
    json_option,
    out,
)


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


@click.command("verify")
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
    address = email_argument(email)
    pin = _read_pin()

    from branding.support_mail import support_mailer
    from core.services import Services
    from support import notify, pins

    settings = _settings(ctx)

    async def go() -> dict[str, Any]:
        svc = Services.open(settings)
        try:
            async with svc.db.session() as s:
                result = await pins.check_pin(
                    s, pins.email_key(svc.root_key), address, pin,
                    agent=agent or _default_agent(), account_id=account,
                )  # fmt: skip
                mailer = support_mailer(svc.vault, sender_address=settings.sender_address,
                                        portal_url=settings.portal_base_url)  # fmt: skip
                await notify.notify_locked(s, mailer, result.locked_now)
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


@click.command("letter")
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
    address = email_argument(email)

    from core.audit import audit
    from core.services import Services
    from support.letter import build_letter, render_letter

    settings = _settings(ctx)

    async def go() -> dict[str, Any]:
        svc = Services.open(settings)
        try:
            async with svc.db.session() as s:
                info = await build_letter(s, settings.portal_base_url, address, name, named)
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
