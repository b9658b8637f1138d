"""What ``encrypt_pgp`` and ``encrypt_smime`` share: one encrypted copy per recipient,
or :class:`~gateway.pipeline.failure.EncryptionFailed` (the message waits, never clear)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from core.errors import SealmailError
from core.models import MessageRecipient, Tenant
from core.services import Services
from gateway.pipeline.context import Context
from gateway.pipeline.crypto.large import LargeSource, Spooled
from gateway.pipeline.failure import EncryptionFailed
from gateway.pipeline.handlers.to_outbox import enqueue_copy

Encrypt = Callable[[Services, Tenant, bytes, str], Awaitable[bytes]]
EncryptLarge = Callable[[Services, Tenant, LargeSource, str], Awaitable[Spooled]]


async def encrypt_each(
    ctx: Context,
    rcpts: list[MessageRecipient],
    encrypt: Encrypt,
    name: str,
    encrypt_large: EncryptLarge | None = None,
) -> None:
    """Each recipient's copy encrypted with ``encrypt`` and put in the outbox; a large
    message's with ``encrypt_large``, from the stream (the runner reads a large message
    whole for a handler without one)."""
    data = ctx.outbound_raw()
    if ctx.large is not None:
        assert encrypt_large is not None, "a large message reached a whole-message handler"
        source = LargeSource(ctx.large, data)
        for r in rcpts:
            try:
                spooled = await encrypt_large(ctx.services, ctx.tenant, source, r.rcpt)
            except Exception as exc:  # noqa: BLE001 - any failure means: not now, never clear
                raise _failed(name, r.rcpt, exc) from exc
            try:
                await enqueue_copy(ctx, [r], spooled.chunks(), kind="encrypted", require_tls=False)
            finally:
                spooled.close()
        return
    for r in rcpts:
        try:
            sealed = await encrypt(ctx.services, ctx.tenant, data, r.rcpt)
        except Exception as exc:  # noqa: BLE001 - any failure means: not now, never clear
            raise _failed(name, r.rcpt, exc) from exc
        await enqueue_copy(ctx, [r], sealed, kind="encrypted", require_tls=False)


def _failed(name: str, rcpt: str, exc: Exception) -> EncryptionFailed:
    reason = str(exc) if isinstance(exc, SealmailError) else type(exc).__name__
    return EncryptionFailed(f"{name} encryption to {rcpt} failed: {reason}")
