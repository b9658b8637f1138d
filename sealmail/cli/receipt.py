"""``sealmail receipt MESSAGE_ID [--output FILE]``: a message's signed receipt (JSON);
``sealmail receipt verify FILE --public-key FILE``: check one offline, with only the public
key (exit 0 valid; 1 invalid, naming what failed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from sealmail.cli.common import Failure, _run, _services, config_option, out


class _ReceiptGroup(click.Group):
    """``receipt verify ...`` is the subcommand; ``receipt MESSAGE_ID`` issues one."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            return "issue", self.commands["issue"], args
        return super().resolve_command(ctx, args)


@click.group("receipt", cls=_ReceiptGroup)
def receipt() -> None:
    """Signed receipts: what was sent, when, to whom, and what happened."""


@receipt.command("issue", hidden=True)
@click.argument("message_id")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write it to this file.")
@config_option
@click.pass_context
def issue(ctx: click.Context, message_id: str, output: str | None, config: str | None) -> None:
    """The signed receipt of MESSAGE_ID (JSON; to standard output without --output)."""
    from core.evidence.receipt import build

    async def go() -> dict[str, Any]:
        svc = _services(ctx)
        try:
            return await build(svc, message_id)
        finally:
            await svc.close()

    data = json.dumps(_run(go()), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if output:
        Path(output).write_text(data, encoding="utf-8")
        out.print(f"Receipt of {message_id} written to {output}.", markup=False)
    else:
        click.echo(data, nl=False)


@receipt.command("verify")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--public-key",
    "public_key",
    required=True,
    type=click.Path(dir_okay=False),
    help="The tenant's public key: the portal's /.well-known/sealmail/receipt-keys, or PEM.",
)
def verify_cmd(file: str, public_key: str) -> None:
    """Check the receipt FILE offline with only the tenant's public key."""
    from core.evidence.receipt import load_public_keys, verify

    try:
        data = Path(file).read_bytes()
        keys = load_public_keys(Path(public_key).read_bytes())
    except OSError as exc:
        raise Failure(f"cannot read {exc.filename}: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise Failure(f"{public_key} is not a public key file ({exc})") from None
    problems = verify(data, keys)
    if problems:
        raise Failure(f"invalid receipt: {problems[0]}")
    doc = json.loads(data)["receipt"]
    events = sum(len(r["events"]) for r in doc["recipients"])
    out.print(
        f"Valid receipt: message {doc['message_id']} of {doc['tenant']}, SHA-256 "
        f"{doc['sha256']}, {len(doc['recipients'])} recipient(s), {events} event(s), "
        f"signed with key {json.loads(data)['key_id']}.",
        markup=False,
    )
