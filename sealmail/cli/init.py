"""``sealmail init``: create a working directory (config, keys, TLS certificate, database,
demo tenant)."""

from __future__ import annotations

import click

from sealmail.cli.common import _print_json, handles_errors, json_option, out
from sealmail.cli.tenant import _creds_dict, _show_creds


@click.command()
@click.option("--dir", "directory", default=".", type=click.Path(file_okay=False))
@click.option(
    "--public-url",
    default=None,
    help="Where people reach the portal, e.g. https://secure.example.com (its links point there).",
)
@json_option
@handles_errors
def init(directory: str, public_url: str | None, as_json: bool) -> None:
    """Create a working directory: config, keys, TLS certificate, database, demo tenant."""
    from sealmail.workdir import DEMO_DOMAIN, init_workdir

    report = init_workdir(directory, public_url)
    demo = report.demo
    if as_json:
        _print_json(
            {
                "config": str(report.config_path),
                "created": report.created,
                "demo_tenant": _creds_dict(demo, [DEMO_DOMAIN]) if demo else None,
            }
        )
        return
    if not report.created:
        out.print(f"{report.config_path.parent} is already initialised; nothing changed.")
    for item in report.created:
        out.print(f"created {item}")
    if demo:
        out.print("\nDemo tenant (credentials are shown only now):")
        _show_creds(demo, [DEMO_DOMAIN])
    out.print(f"\nNext: sealmail --config {report.config_path} serve")
