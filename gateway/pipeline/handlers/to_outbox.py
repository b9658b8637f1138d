"""Handlers ``to_outbox`` and ``to_outbox_tls``: the original bytes into the outbox, for
the next hop (the ``tls`` copy only over verified TLS)."""

from __future__ import annotations

from collections.abc import Iterable

from core import outbox
from core.mime_text import header_text
from core.models import MessageRecipient
from gateway.headers import folded_field, strip_fields
from gateway.pipeline.context import Context
from gateway.pipeline.large_copy import outbound_chunks


async def to_outbox(ctx: Context, rcpts: list[MessageRecipient]) -> None:
    """The original bytes, internal headers removed from the header block only."""
    if ctx.large is not None:  # streamed from the stored original, never held whole
        data: bytes | Iterable[bytes] = outbound_chunks(ctx.large, {})
    else:
        data = strip_fields(ctx.raw)
    await enqueue_copy(ctx, rcpts, data, kind="clear", require_tls=False)


async def to_outbox_tls(ctx: Context, rcpts: list[MessageRecipient]) -> None:
    """As :func:`to_outbox`, flagged so delivery sends it only over verified TLS (and
    with a trigger keyword taken out of the subject)."""
    if ctx.large is not None:
        replace = {}
        if ctx.subject != header_text(ctx.msg, "Subject"):
            replace[b"subject"] = folded_field("Subject", ctx.subject)
        data: bytes | Iterable[bytes] = outbound_chunks(ctx.large, replace)
    else:
        data = ctx.outbound_raw()
    await enqueue_copy(ctx, rcpts, data, kind="clear", require_tls=True)


async def enqueue_copy(
    ctx: Context,
    rcpts: list[MessageRecipient],
    data: bytes | Iterable[bytes],
    *,
    kind: str,
    require_tls: bool,
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
