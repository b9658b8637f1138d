"""What ``encrypt_pgp`` and ``encrypt_smime`` share: one encrypted copy per recipient,
or :class:`~gateway.pipeline.failure.EncryptionFailed` (the message waits, never clear)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from core.errors import SealmailError
from core.models import MessageRecipient, Tenant
from core.services import Services
from gateway.pipeline.context import Context
from gateway.pipeline.failure import EncryptionFailed
from gateway.pipeline.handlers.to_outbox import enqueue_copy

Encrypt = Callable[[Services, Tenant, bytes, str], Awaitable[bytes]]


async def encrypt_each(
    ctx: Context, rcpts: list[MessageRecipient], encrypt: Encrypt, name: str
) -> None:
    """Each recipient's copy encrypted with ``encrypt`` and put in the outbox."""
    data = ctx.outbound_raw()
    for r in rcpts:
        try:
            sealed = await encrypt(ctx.services, ctx.tenant, data, r.rcpt)
        except Exception as exc:  # noqa: BLE001 - any failure means: not now, never clear
            reason = str(exc) if isinstance(exc, SealmailError) else type(exc).__name__
            raise EncryptionFailed(f"{name} encryption to {r.rcpt} failed: {reason}") from exc
        await enqueue_copy(ctx, [r], sealed, kind="encrypted", require_tls=False)
