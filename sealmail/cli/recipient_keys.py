"""``sealmail keys import|list|remove``: recipients' OpenPGP keys and S/MIME certificates
known to a tenant (SPEC §1)."""

from __future__ import annotations

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


def key_dict(k: Any) -> dict[str, Any]:
    return {
        "id": k.id,
        "kind": k.kind,
        "email": k.email,
        "fingerprint": k.fingerprint,
        "algorithm": k.algorithm,
        "bits": k.bits,
        "not_after": _ts(k.not_after) if k.not_after else None,
        "source": k.source,
        "created_at": _ts(k.created_at),
    }


async def _with_tenant(ctx: click.Context, ref: str, fn: Any) -> Any:
    from core.accounts.tenants import find_tenant
    from core.services import Services

    svc = Services.open(_settings(ctx))
    try:
        async with svc.db.session() as s:
            tenant = await find_tenant(s, ref)
            result = await fn(s, tenant)
            await s.commit()
            return result
    finally:
        await svc.close()


@click.group()
def keys() -> None:
    """Recipients' OpenPGP public keys and S/MIME certificates known to a tenant."""


@keys.command("import")
@click.argument("tenant")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@config_option
@json_option
@click.pass_context
def keys_import(
    ctx: click.Context, tenant: str, file: str, config: str | None, as_json: bool
) -> None:
    """Import public keys or certificates (armored/binary OpenPGP, PEM/DER X.509; - = stdin)."""
    from core import recipient_keys

    try:
        data = click.get_binary_stream("stdin").read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        raise Failure(f"cannot read {file}: {exc.strerror or exc}") from None

    async def go(s: Any, t: Any) -> list[dict[str, Any]]:
        return [key_dict(k) for k in await recipient_keys.import_keys(s, t.id, data, actor="cli")]

    rows = _run(_with_tenant(ctx, tenant, go))
    if as_json:
        _print_json(rows)
        return
    for r in rows:
        out.print(f"imported {r['kind']} key {r['fingerprint']} for {r['email']}")


@keys.command("list")
@click.argument("tenant")
@config_option
@json_option
@click.pass_context
def keys_list(ctx: click.Context, tenant: str, config: str | None, as_json: bool) -> None:
    """List a tenant's recipient keys."""
    from core import recipient_keys

    async def go(s: Any, t: Any) -> list[dict[str, Any]]:
        return [key_dict(k) for k in await recipient_keys.list_keys(s, t.id)]

    rows = _run(_with_tenant(ctx, tenant, go))
    if as_json:
        _print_json(rows)
        return
    table = Table("kind", "email", "fingerprint", "algorithm", "expires (UTC)", "source")
    for r in rows:
        table.add_row(
            r["kind"],
            r["email"],
            r["fingerprint"],
            r["algorithm"],
            r["not_after"] or "never",
            r["source"],
        )
    out.print(table if rows else "no keys")


@keys.command("remove")
@click.argument("tenant")
@click.argument("fingerprint")
@config_option
@json_option
@click.pass_context
def keys_remove(
    ctx: click.Context, tenant: str, fingerprint: str, config: str | None, as_json: bool
) -> None:
    """Remove a key by fingerprint (or id)."""
    from core import recipient_keys

    async def go(s: Any, t: Any) -> list[dict[str, Any]]:
        removed = await recipient_keys.remove_key(s, t.id, fingerprint, actor="cli")
        return [key_dict(k) for k in removed]

    rows = _run(_with_tenant(ctx, tenant, go))
    if as_json:
        _print_json(rows)
        return
    for r in rows:
        out.print(f"removed {r['kind']} key {r['fingerprint']} for {r['email']}")
