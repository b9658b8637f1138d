"""``sealmail archive export``: a search result (or a whole tenant) as an mbox or a zip of
.eml files with manifests; written to the audit log like a search."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from sealmail.cli.archive_search import _actor, _query, search_options
from sealmail.cli.common import (
    Failure,
    _print_json,
    _run,
    _services,
    config_option,
    json_option,
    out,
)


@click.command("export")
@click.argument("tenant_ref", metavar="TENANT")
@search_options
@click.option("--format", "fmt", type=click.Choice(["mbox", "zip"]), required=True)
@click.option("--output", type=click.Path(dir_okay=False), required=True, help="File to write.")
@config_option
@json_option
@click.pass_context
def export_cmd(
    ctx: click.Context,
    tenant_ref: str,
    fmt: str,
    output: str,
    config: str | None,
    as_json: bool,
    **criteria: Any,
) -> None:
    """Export a search result (or, with no criteria, the whole tenant) as an mbox or a zip
    of .eml files with manifest.json and manifest.csv (SHA-256 of each original)."""
    from archive import export
    from archive.search import audit_search
    from core.accounts.tenants import find_tenant

    query = _query(criteria)
    path = Path(output)
    if path.exists():
        raise Failure(f"{output} already exists")
    if not path.parent.is_dir():
        raise Failure(f"no directory {str(path.parent)!r}")
    stats = export.ExportStats()

    async def go() -> None:
        svc = _services(ctx)
        tmp = path.with_name(f".{path.name}.part")
        try:
            async with svc.db.session() as s:
                tenant = await find_tenant(s, tenant_ref)
            total = await export.count(svc, tenant.id, query)
            progress = Progress(
                TextColumn("exporting"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[mb]:.1f} MB"),
                TimeElapsedColumn(),
                console=out,
                disable=not out.is_terminal or as_json,
            )
            with progress, tmp.open("wb") as fh:
                os.chmod(tmp, 0o600)
                task = progress.add_task("export", total=total, mb=0.0)
                stream = export.exporter(fmt)(
                    svc, tenant.id, query, stats,
                    lambda n, b: progress.update(task, completed=n, mb=b / 1e6),
                )  # fmt: skip
                async for chunk in stream:
                    fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
            tmp.rename(path)
            async with svc.db.session() as s:
                await audit_search(
                    svc, s, tenant.id, _actor(), query, "archive.export", stats.entries,
                    format=fmt, bytes=stats.bytes, mismatched=stats.mismatched,
                    failed=stats.failed,
                )  # fmt: skip
                await s.commit()
        finally:
            tmp.unlink(missing_ok=True)
            await svc.close()

    _run(go())
    summary = {
        "output": str(path),
        "format": fmt,
        "entries": stats.entries,
        "bytes": stats.bytes,
        "mismatched": stats.mismatched,
        "failed": stats.failed,
    }
    if as_json:
        _print_json(summary)
    else:
        out.print(f"exported {stats.entries} messages ({stats.bytes} bytes) to {path}")
    if stats.mismatched or stats.failed:
        raise Failure(
            f"{stats.mismatched} messages did not match their sealed digest, "
            f"{stats.failed} could not be opened (see the manifest)"
        )
