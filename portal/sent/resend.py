"""Resending a recipient's notification (``/sent/{id}``, the admin page and the API).

The access's link token is rotated: a new random token, only its SHA-256 stored, so the old
link stops working at once (it answers like any unknown link). A new notification, the
tenant's branded one with the new link, is composed and posted through the outbox like the
pipeline's first one; the event ``resent`` is recorded and the change audited. A revoked or
expired access is not resent: the sender lifts the expiry first (a revoked one stays
revoked).

Branding is layer 1 beside :mod:`conversations`, so this lives in the portal, which both
may be imported by.
"""

from __future__ import annotations

import asyncio
from email.utils import parseaddr

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from branding import references
from branding.brands import brand_of_message
from branding.mail import compose
from branding.notifications import LOGO_CID, render_notification
from conversations import events
from conversations.control import accesses
from core import outbox
from core.audit import audit
from core.errors import NotFound, PermanentError
from core.hashing import sha256_hex
from core.ids import new_token
from core.models import Message, PortalAccess, Tenant, now
from core.portal_links import portal_url_for
from core.portal_message import PortalMessage
from core.services import Services


class CannotResend(Exception):
    """The access may not get a new link now; the message says why, for people."""


async def _sender(services: Services, s: AsyncSession, msg: Message) -> tuple[str, str, str]:
    """(name, address, subject) the notice shows, from the sealed metadata."""
    try:
        if msg.meta_object_id:
            pm = PortalMessage.from_json(
                await services.vault.read(s, msg.tenant_id, msg.meta_object_id)
            )
            name, address = parseaddr(pm.sender)
            return pm.sender_name or name, address or msg.mail_from, pm.subject
    except (NotFound, PermanentError, ValueError, LookupError):
        pass
    return "", msg.mail_from, ""


async def resend(
    services: Services,
    s: AsyncSession,
    tenant: Tenant,
    msg: Message,
    recipient: str,
    actor: str,
) -> str:
    """A new link and notification for ``recipient``; returns the recipient's address.
    NotFound when the recipient has no portal access to the message, CannotResend when it
    is revoked or expired. The caller commits."""
    rows = await accesses(s, msg, recipient) if recipient.strip() else []
    if not rows:
        raise NotFound(f"{recipient[:80]} has no portal access to message {msg.id}")
    row = rows[0]
    if row.revoked:
        raise CannotResend(f"{row.recipient}'s access was revoked; it cannot be sent again.")
    if row.expires_at <= now():
        raise CannotResend(
            f"{row.recipient}'s access has expired; change the expiry first, then resend."
        )
    token = new_token()
    await s.execute(
        update(PortalAccess).where(PortalAccess.id == row.id).values(token_hash=sha256_hex(token))
    )
    settings = services.settings
    name, address, subject = await _sender(services, s, msg)
    base = portal_url_for(settings.portal_base_url, tenant.portal_host)
    link = f"{base}/m/{token}"
    ref = await references.issue(s, tenant.id, msg.id, row.recipient)
    look = await brand_of_message(s, tenant, msg.id, row.recipient)
    images = [(LOGO_CID, look.logo_png)] if look.logo_png else []
    from_addr = tenant.notification_from or settings.sender_address

    def build() -> bytes:
        rendered = render_notification(
            tenant,
            sender_name=name or address,
            sender_address=address,
            subject=None if tenant.hide_subject else subject,
            link=link,
            recipient=row.recipient,
            expires_at=row.expires_at,
            portal_base_url=base,
            reference=ref,
            look=look,
            logo_src=f"cid:{LOGO_CID}" if images else "",
        )
        return compose(
            from_addr=from_addr,
            to_addr=row.recipient,
            rendered=rendered,
            headers={"Auto-Submitted": "auto-generated"},
            inline_images=images,
        )

    raw = await asyncio.to_thread(build)
    await outbox.post(
        s,
        services.vault,
        kind="notification",
        tenant_id=tenant.id,
        mail_from=msg.mail_from,
        recipients=[row.recipient],
        raw=raw,
        lifetime=settings.queue_lifetime,
        message_id=msg.id,
    )
    events.record(s, tenant.id, msg.id, events.RESENT, row.recipient, actor)
    await audit(s, tenant.id, actor, "message.resent", msg.id, recipient=row.recipient)
    return row.recipient
