"""``sealmail migrate``: bring the database schema up to date."""

from __future__ import annotations

import click

from sealmail.cli.common import _settings, config_option, handles_errors, out


@click.command()
@config_option
@click.pass_context
@handles_errors
def migrate(ctx: click.Context, config: str | None) -> None:
    """Bring the database schema up to date."""
    from core.db import current_revision
    from core.db import migrate as do_migrate

    settings = _settings(ctx)
    before = current_revision(settings.database_url)
    do_migrate(settings.database_url)
    after = current_revision(settings.database_url)
    if before == after:
        out.print(f"database already at revision {after}")
    else:
        out.print(f"database migrated from {before or 'empty'} to {after}")
    from sealmail.workdir import ensure_kms_derivation_secret

    secret = ensure_kms_derivation_secret(settings)  # a KMS root's, in the database
    if secret:
        out.print(f"created {secret}")
