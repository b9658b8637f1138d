"""``sealmail archive sweep``: apply retention. It shreds (destroys the data keys of, then
deletes) what has outlived its retention and is under no legal hold; every action is in the
audit log; nothing here prints message content."""

from __future__ import annotations

from typing import Any

import click

from sealmail.cli.common import (
    _print_json,
    _run,
    _services,
    _tenant_id,
    config_option,
    json_option,
    out,
    progress_bar,
)


@click.command("sweep")
@click.option("--tenant", "tenant_ref", help="Only this tenant (name or id).")
@click.option("--dry-run", is_flag=True, help="Count what is due; change nothing.")
@config_option
@json_option
@click.pass_context
def sweep_command(
    ctx: click.Context, tenant_ref: str | None, dry_run: bool, config: str | None, as_json: bool
) -> None:
    """Apply retention: shred archive entries and portal copies past their date (never
    anything under legal hold). Idempotent; the worker runs it every hour."""
    from archive.sweep import sweep

    async def go() -> dict[str, Any]:
        svc = _services(ctx)
        try:
            tenant_id = await _tenant_id(svc, tenant_ref)
            with progress_bar("sweeping", not as_json and not dry_run) as progress:
                report = await sweep(svc, tenant_id, dry_run=dry_run, progress=progress)
            return report.as_json()
        finally:
            await svc.close()

    data = _run(go())
    if as_json:
        _print_json(data)
    elif dry_run:
        out.print(
            f"dry run: {data['entries_due']} archive entries and {data['portal_due']} portal "
            f"copies are due; {data['entries_held']} entries and {data['portal_held']} portal "
            "copies are under legal hold"
        )
    else:
        out.print(
            f"shredded {data['entries_shredded']} archive entries and {data['portal_expired']} "
            f"portal copies ({data['keys_destroyed']} keys destroyed, {data['objects_deleted']} "
            f"objects deleted); {data['entries_held'] + data['portal_held']} held"
        )
        if data["messages_shredded"]:
            out.print(f"shredded {data['messages_shredded']} messages with no archive entry")
        if data["objects_locked"]:
            out.print(
                f"{data['objects_locked']} objects still under Object Lock (keys destroyed; "
                "deleted at their lock date)"
            )
        for p in data["problems"]:
            out.print(f"  {p['id']} ({p['tenant_id'] or '-'}): {p['problem']}")
    if data["problems"]:
        raise SystemExit(1)
