"""Handler ``archive_journal``: an Exchange journal report archived, never delivered."""

from __future__ import annotations

from core.models import MessageRecipient
from gateway.pipeline import archive_record
from gateway.pipeline.context import Context
from gateway.pipeline.journal import archive_report
from gateway.pipeline.journal_large import archive_large_report


async def archive_journal(ctx: Context, rcpts: list[MessageRecipient]) -> None:
    """The report unwrapped and archived (:mod:`gateway.pipeline.journal`); nothing goes out."""
    if ctx.large is not None:  # unwrapped and archived from the stream
        entry, summary = await archive_large_report(
            ctx.services, ctx.session, ctx.tenant, ctx.message, ctx.large
        )
        if summary is not None:
            await archive_record.record_journal(
                ctx.services, ctx.session, ctx.message, ctx.raw, entry, summary
            )
        return
    entry = await archive_report(ctx.services, ctx.session, ctx.tenant, ctx.message, ctx.raw)
    await archive_record.record_journal(ctx.services, ctx.session, ctx.message, ctx.raw, entry)
