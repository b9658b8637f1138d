"""Handler ``encrypt_pgp``: PGP/MIME (RFC 3156) copies, one per recipient."""

from __future__ import annotations

from core.models import MessageRecipient
from gateway.pipeline.context import Context
from gateway.pipeline.handlers.encrypt_each import encrypt_each


async def encrypt_pgp(ctx: Context, rcpts: list[MessageRecipient]) -> None:
    """One PGP/MIME copy per recipient, encrypted to that recipient's key only."""
    from gateway.pipeline.crypto.pgp import encrypt_pgp_mime, encrypt_pgp_mime_large

    await encrypt_each(ctx, rcpts, encrypt_pgp_mime, "OpenPGP", encrypt_pgp_mime_large)
