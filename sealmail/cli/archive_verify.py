"""``sealmail archive verify``: read back and authenticate every live sealed object."""

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


@click.command("verify")
@click.option("--tenant", "tenant_ref", help="Only this tenant (name or id).")
@config_option
@json_option
@click.pass_context
def verify_command(
    ctx: click.Context, tenant_ref: str | None, config: str | None, as_json: bool
) -> None:
    """Read back every live sealed object, authenticate every chunk and compare digests.
    Exit 1 if anything is damaged or missing."""
    from archive.verify import verify

    async def go() -> dict[str, Any]:
        svc = _services(ctx)
        try:
            tenant_id = await _tenant_id(svc, tenant_ref)
            with progress_bar("verifying", not as_json) as progress:
                report = await verify(svc, tenant_id, progress=progress)
            return report.as_json()
        finally:
            await svc.close()

    data = _run(go())
    if as_json:
        _print_json(data)
    else:
        out.print(
            f"checked {data['checked']} objects ({data['bytes']} bytes): {data['ok']} ok, "
            f"{len(data['damaged'])} damaged or missing"
        )
        for d in data["damaged"]:
            out.print(f"  {d['object_id']} tenant {d['tenant_id']} ({d['kind']}): {d['problem']}")
    if data["damaged"]:
        raise SystemExit(1)
