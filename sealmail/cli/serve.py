"""``sealmail serve``: run the SMTP gateway, the portal and the workers (the work is in
``sealmail/server.py``)."""

from __future__ import annotations

import asyncio
import sys

import click

from sealmail.cli.common import Failure, _settings, config_option, handles_errors


@click.command()
@config_option
@click.option(
    "--role",
    type=click.Choice(["all", "smtp", "portal", "worker"]),
    default="all",
    show_default=True,
)
@click.pass_context
@handles_errors
def serve(ctx: click.Context, config: str | None, role: str) -> None:
    """Run the SMTP gateway, the portal and the workers."""
    from sealmail.logs import setup_logging
    from sealmail.server import check_schema
    from sealmail.server import serve as run_serve

    settings = _settings(ctx)
    setup_logging(settings.log_format, settings.log_level)
    check_schema(settings)

    def announce(line: str) -> None:
        click.echo(line)
        sys.stdout.flush()

    try:
        asyncio.run(run_serve(settings, role, announce))
    except OSError as exc:
        raise Failure(f"cannot start: {exc.strerror or exc}") from None
