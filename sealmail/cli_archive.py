"""``sealmail archive ...``: Search, export, apply retention to and verify the long-term archive."""

from __future__ import annotations

import click


@click.group()
def archive() -> None:
    """Search, export, apply retention to and verify the long-term archive."""


# --- search, export, reindex (issue 5, the archive index) ----------------------------------
from sealmail.cli_archive_search import register as _register_search  # noqa: E402

_register_search(archive)
