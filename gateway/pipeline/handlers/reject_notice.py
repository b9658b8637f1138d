"""Handler ``reject_notice``: the sender is told which policy rule refused the message."""

from __future__ import annotations

from core.models import MessageRecipient
from gateway.delivery.dsn import Failure
from gateway.pipeline.bounce import enqueue_bounce
from gateway.pipeline.context import Context


async def reject_notice(ctx: Context, rcpts: list[MessageRecipient]) -> None:
    """A bounce to the sender naming the rule; the copies are never sent."""
    failures = [
        Failure(r.rcpt, "5.7.1", f"refused by policy rule '{ctx.verdicts[r.rcpt].rule}'")
        for r in rcpts
    ]
    await enqueue_bounce(ctx.services, ctx.session, ctx.message, ctx.raw, failures)
