"""The author's own copy of a reply or forward written in the portal: a portal access of
kind ``author`` (no notification; its token is random and never mailed), so the thread the
author reads shows what they wrote. The message is sealed for the portal for it even when
every recipient got it by mail."""

from __future__ import annotations

from sqlalchemy import func, select

from core.hashing import sha256_hex
from core.ids import new_id, new_token
from core.models import PortalAccess, now
from gateway.pipeline.context import Context
from gateway.pipeline.handlers.seal_to_portal import seal_to_portal

AUTHOR_ORIGINS = ("reply", "forward")


async def grant_author(ctx: Context) -> None:
    """One author access per message (a later pass, e.g. a release from quarantine, finds
    the first one and adds none)."""
    author = ctx.message.mail_from.strip().lower()
    if not author:
        return
    have = await ctx.session.scalar(
        select(func.count())
        .select_from(PortalAccess)
        .where(
            PortalAccess.message_id == ctx.message.id,
            PortalAccess.tenant_id == ctx.tenant.id,
            PortalAccess.kind == "author",
        )
    )
    if have:
        return
    await seal_to_portal(ctx, [])
    lifetime = ctx.services.settings.portal_link_lifetime
    ctx.session.add(
        PortalAccess(
            id=new_id("a_"),
            token_hash=sha256_hex(new_token()),  # never mailed: no usable link
            message_id=ctx.message.id,
            tenant_id=ctx.tenant.id,
            recipient=author,
            expires_at=ctx.options.expires_at or now() + lifetime,
            kind="author",
        )
    )
