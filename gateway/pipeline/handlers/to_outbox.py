"""Handlers ``to_outbox`` and ``to_outbox_tls``: the original bytes into the outbox, for
the next hop (the ``tls`` copy only over verified TLS)."""

from __future__ import annotations

from core import outbox
from core.models import MessageRecipient
from gateway.headers import strip_fields
from gateway.pipeline.context import Context


async def to_outbox(ctx: Context, rcpts: list[MessageRecipient]) -> None:
    """The original bytes, internal headers removed from the header block only."""
    await enqueue_copy(ctx, rcpts, strip_fields(ctx.raw), kind="clear", require_tls=False)


async def to_outbox_tls(ctx: Context, rcpts: list[MessageRecipient]) -> None:
    """As :func:`to_outbox`, flagged so delivery sends it only over verified TLS."""
    await enqueue_copy(ctx, rcpts, ctx.outbound_raw(), kind="clear", require_tls=True)


async def enqueue_copy(
    ctx: Context, rcpts: list[MessageRecipient], data: bytes, *, kind: str, require_tls: bool
) -> None:
    """``data`` sealed and put in the outbox for ``rcpts`` (through :func:`outbox.post`)."""
    await outbox.post(
        ctx.session,
        ctx.services.vault,
        kind=kind,
        tenant_id=ctx.tenant.id,
        mail_from=ctx.message.mail_from,
        recipients=[r.rcpt for r in rcpts],
        raw=data,
        lifetime=ctx.services.settings.queue_lifetime,
        message_id=ctx.message.id,
        require_tls=require_tls,
    )
