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
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "pdf"]),
    default=None,
    help="json (the default), or a PDF a person reads that carries the same signed JSON "
    "(the default for an --output ending in .pdf).",
)
@config_option
@click.pass_context
def issue(
    ctx: click.Context, message_id: str, output: str | None, fmt: str | None, config: str | None
) -> None:
    """The signed receipt of MESSAGE_ID (to standard output without --output)."""
    from core.evidence.receipt import build

    fmt = fmt or ("pdf" if output and output.lower().endswith(".pdf") else "json")
    if fmt == "pdf" and not output:
        raise Failure("a PDF receipt needs --output FILE")

    async def go() -> tuple[dict[str, Any], str]:
        svc = _services(ctx)
        try:
            return await build(svc, message_id), svc.settings.portal_base_url
        finally:
            await svc.close()

    signed, portal_url = _run(go())
    if fmt == "pdf":
        from core.evidence.paper import render

        assert output is not None
        Path(output).write_bytes(render(signed, portal_url))
        out.print(f"Receipt of {message_id} written to {output} (PDF).", markup=False)
        return
    data = json.dumps(signed, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
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
    """Check the receipt FILE (JSON or PDF) offline with only the tenant's public key."""
    from core.evidence.receipt import load_public_keys, signed_json, verify

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
    signed = json.loads(signed_json(data))
    doc = signed["receipt"]
    events = sum(len(r["events"]) for r in doc["recipients"])
    out.print(
        f"Valid receipt: message {doc['message_id']} of {doc['tenant']}, SHA-256 "
        f"{doc['sha256']}, {len(doc['recipients'])} recipient(s), {events} event(s), "
        f"signed with key {signed['key_id']}.",
        markup=False,
    )
