"""``sealmail archive ...``: the ``archive`` group; its commands live one module each
(search, export, reindex, sweep, verify, hold) and are added here from one list."""

from __future__ import annotations

import click

from sealmail.cli.archive_export import export_cmd
from sealmail.cli.archive_hold import hold
from sealmail.cli.archive_reindex import reindex_cmd
from sealmail.cli.archive_search import search_cmd
from sealmail.cli.archive_sweep import sweep_command
from sealmail.cli.archive_verify import verify_command


@click.group()
def archive() -> None:
    """Search, export, apply retention to and verify the long-term archive."""


for _command in (search_cmd, export_cmd, reindex_cmd, sweep_command, verify_command, hold):
    archive.add_command(_command)
