"""``sealmail billing ...``: Billing: run the dunning schedule."""

from __future__ import annotations

import click


@click.group()
def billing() -> None:
    """Billing: run the dunning schedule."""
