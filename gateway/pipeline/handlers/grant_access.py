"""Handler ``grant_access``: a portal link per recipient of a sealed message."""

from __future__ import annotations

from core.hashing import sha256_hex
from core.ids import new_id, new_token
from core.models import MessageRecipient, PortalAccess, now
from core.portal_links import portal_url_for
from gateway.pipeline.context import Context


async def grant_access(ctx: Context, rcpts: list[MessageRecipient]) -> None:
    """One link per recipient: ≥ 256 random bits, only its SHA-256 stored. It works until
    the message's ``X-Sealmail-Expires`` when it has one, else for the default lifetime."""
    settings = ctx.services.settings
    expires = ctx.options.expires_at or now() + settings.portal_link_lifetime
    base = portal_url_for(settings.portal_base_url, ctx.tenant.portal_host)
    for r in rcpts:
        email = r.rcpt.strip().lower()
        token = new_token()
        ctx.session.add(
            PortalAccess(
                id=new_id("a_"),
                token_hash=sha256_hex(token),
                message_id=ctx.message.id,
                tenant_id=ctx.tenant.id,
                recipient=email,
                expires_at=expires,
            )
        )
        ctx.new_recipients.add(email)
        ctx.links[r.rcpt] = (f"{base}/m/{token}", expires)
