"""``sealmail archive search|export|reindex``: the archive index from the command line.

Registered on the ``archive`` group by :mod:`sealmail.cli_archive`. Every search and export
is written to the audit log (who, tenant, how many criteria and results, a keyed hash of
the query; never the words or addresses searched for).
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable
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
from rich.table import Table

from sealmail.cli import Failure, _print_json, _run, _settings, _ts, config_option, json_option, out


def _services(ctx: click.Context) -> Any:
    from archive.services import Services

    return Services.open(_settings(ctx))


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def search_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The search criteria shared by ``search`` and ``export``."""
    options = [
        click.option("--from", "sender", help="Sender address, or a domain (@example.com)."),
        click.option("--to", "recipient", help="Recipient address (To, Cc or Bcc), or a domain."),
        click.option("--after", help="Received on or after this day (YYYY-MM-DD, UTC)."),
        click.option("--before", help="Received on or before this day (YYYY-MM-DD, UTC)."),
        click.option("--subject", help="Words of the subject; all must match."),
        click.option("--has-attachment", is_flag=True, help="Only messages with attachments."),
        click.option("--decision", help="Policy decision: clear, tls, portal, pgp, ... ."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _query(params: dict[str, Any]) -> Any:
    from archive.search import Query, QueryError

    try:
        return Query.from_params(
            {
                "from": params.get("sender") or "",
                "to": params.get("recipient") or "",
                "after": params.get("after") or "",
                "before": params.get("before") or "",
                "subject": params.get("subject") or "",
                "has_attachment": "1" if params.get("has_attachment") else "",
                "decision": params.get("decision") or "",
            }
        )
    except QueryError as exc:
        raise Failure(str(exc)) from None


def register(archive: click.Group) -> None:
    archive.add_command(search_cmd)
    archive.add_command(export_cmd)
    archive.add_command(reindex_cmd)


@click.command("search")
@click.argument("tenant_ref", metavar="TENANT")
@search_options
@click.option("--page", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 500))
@config_option
@json_option
@click.pass_context
def search_cmd(
    ctx: click.Context,
    tenant_ref: str,
    page: int,
    limit: int,
    config: str | None,
    as_json: bool,
    **criteria: Any,
) -> None:
    """Search a tenant's archive (newest first, one page)."""
    from archive.search import search
    from core.accounts.tenants import find_tenant

    query = _query(criteria)

    async def go() -> Any:
        svc = _services(ctx)
        try:
            async with svc.db.session() as s:
                tenant = await find_tenant(s, tenant_ref)
                result = await search(svc, s, tenant.id, query, page=page, limit=limit)
                from archive.search import audit_search

                await audit_search(
                    svc, s, tenant.id, _actor(), query, "archive.search", result.total, page=page
                )
                await s.commit()
            return result
        finally:
            await svc.close()

    result = _run(go())
    if as_json:
        _print_json(result.as_json())
        return
    table = Table("received", "from", "to", "subject", "decision", "size", "att", "id")
    for hit in result.hits:
        m, e = hit.meta, hit.entry
        table.add_row(
            _ts(e.received_at),
            m.sender if m else "?",
            ", ".join(m.recipients()[:3]) + (" …" if m and len(m.recipients()) > 3 else "")
            if m
            else "?",
            m.subject if m else "(unreadable)",
            e.decision,
            str(e.size),
            "yes" if e.has_attachment else "",
            e.id,
        )
    out.print(table)
    more = "" if result.exact else "more than "
    out.print(f"page {result.page} of {result.pages} ({more}{result.total} messages)")


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
    from gateway.archive_record import reindex

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
