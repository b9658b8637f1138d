"""What one pass learns about a message's place in a conversation (issue 12): its
per-message options (``X-Sealmail-Expires`` / ``-Receipt`` / ``-Reply`` / ``-Forward``,
an invalid value logged and ignored, never a rejection), the hash of its Message-ID, and
its thread (the parent named by the portal, else the one its In-Reply-To / References
name, else itself). Read before the pass's write transaction; written with it
(:mod:`gateway.pipeline.outcome`)."""

from __future__ import annotations

import logging

from sqlalchemy import select

from conversations import options, threads
from core.mime_text import header_text
from core.models import Message, MessageRecipient, now
from gateway.pipeline.context import Context

log = logging.getLogger("sealmail.gateway.pipeline")


def own_msgid_hash(ctx: Context) -> str:
    """The stored form of the message's own Message-ID header ("" when it has none)."""
    value = header_text(ctx.msg, "Message-ID")
    found = threads.msgids(value)
    token = found[0] if found else value.strip()
    return threads.msgid_hash(ctx.tenant.id, token) if token else ""


async def _thread(ctx: Context) -> tuple[str, str]:
    """``(thread_id, parent_id)`` of the message."""
    message = ctx.message
    if message.thread_id:  # set by the portal (submit) or by an earlier pass
        return message.thread_id, message.parent_id
    if message.parent_id:
        parent = await ctx.session.get(Message, message.parent_id)
        if parent is not None and parent.tenant_id == ctx.tenant.id:
            return parent.thread_id or parent.id, parent.id
    parent = await threads.parent_by_headers(
        ctx.session,
        ctx.tenant.id,
        header_text(ctx.msg, "In-Reply-To"),
        header_text(ctx.msg, "References"),
    )
    if parent is not None and parent.id != message.id:
        return parent.thread_id or parent.id, parent.id
    return message.id, message.parent_id


async def read_conversation(ctx: Context) -> None:
    """Fill ``ctx.options``, ``ctx.msgid_hash``, ``ctx.thread_id`` and ``ctx.parent_id``."""
    opts = options.parse(lambda name: header_text(ctx.msg, name) or None, now())
    for warning in opts.warnings:
        log.warning("message %s: %s", ctx.message.id, warning)
    ctx.options = opts
    ctx.msgid_hash = own_msgid_hash(ctx)
    ctx.thread_id, ctx.parent_id = await _thread(ctx)


SEALED = ("portal", "pgp", "smime", "pdf")
THREAD_TRIGGER = "it answers a secure conversation"


async def answers_sealed(ctx: Context) -> bool:
    """Whether this message answers (by In-Reply-To / References, or as a portal reply) a
    message of the tenant that was sealed for someone: such an answer is sealed too, so a
    conversation that started secure stays secure when someone presses Reply in Outlook."""
    if not ctx.parent_id:
        return False
    found = await ctx.session.execute(
        select(MessageRecipient.id)
        .join(Message, Message.id == MessageRecipient.message_id)
        .where(
            Message.tenant_id == ctx.tenant.id,
            Message.thread_id == (ctx.thread_id or ctx.parent_id),
            MessageRecipient.disposition.in_(SEALED),
        )
        .limit(1)
    )
    if found.first() is not None:
        return True
    parent = await ctx.session.get(Message, ctx.parent_id)
    return parent is not None and parent.tenant_id == ctx.tenant.id and parent.disposition in SEALED


def conversation_values(ctx: Context) -> dict[str, object]:
    """The message row's conversation columns, as this pass found them."""
    opts = ctx.options
    return {
        "receipt": bool(ctx.tenant.receipt_default if opts.receipt is None else opts.receipt),
        "reply_mode": opts.reply or "",
        "forward_mode": opts.forward or "",
        "msgid_hash": ctx.msgid_hash,
        "thread_id": ctx.thread_id or ctx.message.id,
        "parent_id": ctx.parent_id,
    }
