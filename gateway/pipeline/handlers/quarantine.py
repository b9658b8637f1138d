"""Handler ``quarantine``: held recipients, grouped by the rule that held them."""

from __future__ import annotations

from core.models import MessageRecipient
from gateway.pipeline.context import Context


async def quarantine(ctx: Context, rcpts: list[MessageRecipient]) -> None:
    """Group the held recipients by rule; the holds are written with the rest when the
    pass is recorded (nothing is written while handlers run)."""
    for r in rcpts:
        v = ctx.verdicts[r.rcpt]
        ctx.holds.setdefault((v.rule, v.reason), []).append(r.rcpt)
