"""``sealmail archive reindex``: index messages archived before the search index existed."""

from __future__ import annotations

import click
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from sealmail.cli.common import _print_json, _run, _services, config_option, json_option, out


@click.command("reindex")
@click.argument("tenant_ref", metavar="[TENANT]", required=False)
@config_option
@json_option
@click.pass_context
def reindex_cmd(
    ctx: click.Context, tenant_ref: str | None, config: str | None, as_json: bool
) -> None:
    """Index messages archived before the search index existed (idempotent)."""
    from core.accounts.tenants import find_tenant
    from gateway.pipeline.archive_record import reindex

    async def go() -> int:
        svc = _services(ctx)
        try:
            tenant_id = None
            if tenant_ref:
                async with svc.db.session() as s:
                    tenant_id = (await find_tenant(s, tenant_ref)).id
            progress = Progress(
                TextColumn("indexing"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=out,
                disable=not out.is_terminal or as_json,
            )
            with progress:
                task = progress.add_task("reindex", total=None)
                return await reindex(
                    svc, tenant_id, lambda n, t: progress.update(task, completed=n, total=t)
                )
        finally:
            await svc.close()

    done = _run(go())
    if as_json:
        _print_json({"indexed": done})
    else:
        out.print(f"indexed {done} messages")
