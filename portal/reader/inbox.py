"""``/inbox``: the signed-in recipient's live messages, newest first."""

from __future__ import annotations

import email.utils

from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import Response

from core.mime_text import clean
from core.models import Message, PortalAccess
from core.portal_message import PortalMessage
from portal.reader.access import live_access, recipient_session, signed_in_context
from portal.state import portal

INBOX_LIMIT = 200


def _short_date(header: str) -> str:
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError, OverflowError):
        return header[:40]
    return when.strftime("%d %b %Y")


async def inbox(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        current = await recipient_session(s, request)
        stmt = (
            select(Message)
            .join(PortalAccess, PortalAccess.message_id == Message.id)
            .where(
                PortalAccess.tenant_id == current.tenant_id,
                Message.tenant_id == current.tenant_id,
                func.lower(PortalAccess.recipient) == current.email,
                Message.meta_object_id.is_not(None),
                Message.portal_expired_at.is_(None),
                *live_access(),
            )
            .order_by(Message.received_at.desc())
            .limit(INBOX_LIMIT)
        )
        items, seen = [], set()
        for msg in (await s.execute(stmt)).scalars().all():
            if msg.id in seen:
                continue
            seen.add(msg.id)
            assert msg.meta_object_id is not None
            pm = PortalMessage.from_json(
                await st.services.vault.read(s, current.tenant_id, msg.meta_object_id)
            )
            items.append(
                {
                    "id": msg.id,
                    "sender": clean(pm.sender_name or pm.sender),
                    "subject": clean(pm.subject),
                    "date": _short_date(clean(pm.date)) if pm.date else "",
                }
            )
        ctx = await signed_in_context(s, current)
    return st.pages.render("reader/inbox.html", {**ctx, "items": items})
