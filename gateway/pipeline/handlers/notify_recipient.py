"""Handler ``notify_recipient``: the tenant's notification mail with the portal link. It
steers the recipient to the portal's Reply button: no ``Reply-To`` to the original sender,
and marked automatic so that auto-replies stay away."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from core import outbox
from core.models import MessageRecipient
from core.portal_links import portal_url_for
from gateway.pipeline.context import Context
from gateway.pipeline.portal_seal import sender_of

if TYPE_CHECKING:
    from branding.brands import BrandLook

NOTICE_HEADERS = {"Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All"}


async def notify_recipient(ctx: Context, rcpts: list[MessageRecipient]) -> None:
    """One notification per recipient, rendered off the loop, sealed into the outbox."""
    # Imported here: branding is layer 1 and renders templates; nothing at import time.
    from branding import references
    from branding.brands import resolve
    from branding.mail import compose
    from branding.notifications import LOGO_CID, render_notification

    settings = ctx.services.settings
    _, name, address = sender_of(ctx.msg, ctx.message.mail_from)
    from_addr = ctx.tenant.notification_from or settings.sender_address
    base = portal_url_for(settings.portal_base_url, ctx.tenant.portal_host)
    for r in rcpts:
        link, expires = ctx.links[r.rcpt]
        ref = await references.issue(ctx.session, ctx.tenant.id, ctx.message.id, r.rcpt)
        verdict = ctx.verdicts.get(r.rcpt)
        wanted = verdict.explanation.get("brand", "") if verdict is not None else ""
        brand = str(wanted or "")
        look = await ctx.cache.get(
            ("brand", ctx.tenant.id, brand),
            lambda brand=brand: resolve(ctx.session, ctx.tenant, brand),
        )
        images = [(LOGO_CID, look.logo_png)] if look.logo_png else []

        def build(
            rcpt: str = r.rcpt,
            link: str = link,
            expires: float = expires,
            ref: str = ref,
            look: BrandLook = look,
            images: list[tuple[str, bytes]] = images,
        ) -> bytes:
            rendered = render_notification(
                ctx.tenant,
                sender_name=name or address,
                sender_address=address,
                subject=None if ctx.tenant.hide_subject else ctx.subject,
                link=link,
                recipient=rcpt,
                expires_at=expires,
                portal_base_url=base,
                reference=ref,
                look=look,
                logo_src=f"cid:{LOGO_CID}" if images else "",
            )
            # No Reply-To: a reply to the notice would leave in clear and never reach the
            # sender; the headers ask auto-responders (Exchange's too) to stay quiet.
            return compose(
                from_addr=from_addr,
                to_addr=rcpt,
                rendered=rendered,
                headers=NOTICE_HEADERS,
                inline_images=images,
            )

        # Templates and MIME composition are CPU work: off the loop that serves SMTP.
        data = await asyncio.to_thread(build)
        await outbox.post(
            ctx.session,
            ctx.services.vault,
            kind="notification",
            tenant_id=ctx.tenant.id,
            mail_from=ctx.message.mail_from,
            recipients=[r.rcpt],
            raw=data,
            lifetime=settings.queue_lifetime,
            message_id=ctx.message.id,
        )
