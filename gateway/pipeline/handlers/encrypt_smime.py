"""Handler ``encrypt_smime``: S/MIME enveloped copies (application/pkcs7-mime)."""

from __future__ import annotations

from core.models import MessageRecipient
from gateway.pipeline.context import Context
from gateway.pipeline.handlers.encrypt_each import encrypt_each


async def encrypt_smime(ctx: Context, rcpts: list[MessageRecipient]) -> None:
    """One S/MIME enveloped copy per recipient."""
    from gateway.pipeline.crypto.smime import encrypt_smime as envelope
    from gateway.pipeline.crypto.smime import encrypt_smime_large

    await encrypt_each(ctx, rcpts, envelope, "S/MIME", encrypt_smime_large)
