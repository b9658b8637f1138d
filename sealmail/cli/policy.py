"""``sealmail policy list|export|import TENANT [FILE]``: a tenant's encryption policy as
YAML or JSON (SPEC §1, §4; the document is described in docs/POLICY.md)."""

from __future__ import annotations

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
    _ts,
    config_option,
    json_option,
    out,
)

FORMATS = click.Choice(["yaml", "json"])


def _format_of(path: str, given: str | None) -> str:
    if given:
        return given
    return "json" if path.lower().endswith(".json") else "yaml"


async def _load(ctx: click.Context, ref: str) -> dict[str, Any]:
    from core.accounts.tenants import find_tenant
    from core.policy.store import get_stored
    from core.services import Services

    svc = Services.open(_settings(ctx))
    try:
        async with svc.db.session() as s:
            t = await find_tenant(s, ref)
            stored = await get_stored(s, t.id)
            return {"tenant": t, "stored": stored}
    finally:
        await svc.close()


@click.group()
def policy() -> None:
    """A tenant's encryption policy (YAML or JSON)."""


def _summary(conds: dict[str, Any]) -> str:
    parts = []
    for key, value in conds.items():
        if isinstance(value, tuple) and value and isinstance(value[0], tuple):
            value = ", ".join(f"{n}={'|'.join(v)}" for n, v in value)
        elif isinstance(value, tuple):
            value = "|".join(value)
        parts.append(f"{key}={value}")
    return " ".join(parts) or "(always)"


@policy.command("list")
@click.argument("tenant")
@config_option
@json_option
@click.pass_context
def policy_list(ctx: click.Context, tenant: str, config: str | None, as_json: bool) -> None:
    """Show a tenant's rules in order (the first that matches decides)."""
    data = _run(_load(ctx, tenant))
    t, stored = data["tenant"], data["stored"]
    if as_json:
        _print_json(
            {
                "tenant": t.id,
                "name": t.name,
                "version": stored.version,
                "updated_at": stored.updated_at,
                "updated_by": stored.updated_by,
                "policy": stored.policy.to_document(),
            }
        )
        return
    p = stored.policy
    out.print(
        f"tenant {t.name}: policy version {stored.version}"
        + (
            f", updated {_ts(stored.updated_at)} UTC by {stored.updated_by}"
            if stored.version
            else ""
        )
    )
    table = Table("#", "rule", "when", "unless", "action")
    for i, r in enumerate(p.rules):
        action = f"{r.action} ({r.method})" if r.action == "encrypt" else r.action
        name = r.name if r.enabled else f"{r.name} (disabled)"
        table.add_row(
            str(i), name, _summary(r.when), _summary(r.unless) if r.unless else "", action
        )
    out.print(table if p.rules else "no rules")
    default = "encrypt (auto) for external recipients" if p.encrypt_external else "pass"
    out.print(f"unmatched mail: {default}")


@policy.command("export")
@click.argument("tenant")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=FORMATS, default=None, help="Default: from FILE, else yaml.")
@config_option
@click.pass_context
def policy_export(
    ctx: click.Context, tenant: str, file: str | None, fmt: str | None, config: str | None
) -> None:
    """Write a tenant's policy to FILE (standard output without one)."""
    from core.policy import dump_policy

    data = _run(_load(ctx, tenant))
    fmt = _format_of(file or "", fmt)
    text = dump_policy(data["stored"].policy, fmt)
    if not file or file == "-":
        click.echo(text, nl=False)
        return
    try:
        Path(file).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise Failure(f"{file}: {exc.strerror or exc}") from None
    click.echo(
        f"policy version {data['stored'].version} of {data['tenant'].name} written to {file}",
        err=True,
    )


@policy.command("import")
@click.argument("tenant")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--format", "fmt", type=FORMATS, default=None, help="Default: from FILE's name.")
@click.option("--dry-run", is_flag=True, help="Validate only; change nothing.")
@config_option
@json_option
@click.pass_context
def policy_import(
    ctx: click.Context,
    tenant: str,
    file: str,
    fmt: str | None,
    dry_run: bool,
    config: str | None,
    as_json: bool,
) -> None:
    """Replace a tenant's policy with FILE (validated first; '-' reads standard input)."""
    from core.accounts.tenants import find_tenant
    from core.policy import PolicyError, parse_policy
    from core.policy.store import set_policy
    from core.services import Services

    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise Failure(f"{file}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        new = parse_policy(text, _format_of(file, fmt))
    except PolicyError as exc:
        raise Failure(f"{Path(file).name if file != '-' else 'stdin'}: {exc}") from None

    async def go() -> dict[str, Any]:
        svc = Services.open(_settings(ctx))
        try:
            async with svc.db.session() as s:
                t = await find_tenant(s, tenant)
                version = None
                if not dry_run:
                    version = await set_policy(s, t.id, new, "cli")
                    await s.commit()
                return {"tenant": t.id, "name": t.name, "version": version, "rules": len(new.rules)}
        finally:
            await svc.close()

    data = _run(go())
    if as_json:
        _print_json({**data, "dry_run": dry_run})
    elif dry_run:
        out.print(f"{file}: valid ({data['rules']} rules); nothing changed")
    else:
        out.print(
            f"tenant {data['name']}: policy version {data['version']} ({data['rules']} rules)"
        )
