"""``sealmail archive ...``: Search, export, apply retention to and verify the long-term archive."""

from __future__ import annotations

import click


@click.group()
def archive() -> None:
    """Search, export, apply retention to and verify the long-term archive."""
