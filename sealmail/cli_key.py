"""``sealmail key ...``: Key-encryption keys: rotate a tenant's KEK or the root key."""

from __future__ import annotations

import click


@click.group()
def key() -> None:
    """Key-encryption keys: rotate a tenant's KEK or the root key."""
