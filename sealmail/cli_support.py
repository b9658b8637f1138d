"""``sealmail support ...``: The support desk: check a caller's PIN."""

from __future__ import annotations

import click


@click.group()
def support() -> None:
    """The support desk: check a caller's PIN."""
