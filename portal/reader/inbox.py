"""``/inbox``: every live conversation from this tenant to the signed-in address, newest
activity first: its subject, who wrote in it, when, how many messages, and whether one of
them is still unopened."""

from __future__ import annotations

import dataclasses

from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import Response

from core.mime_text import clean
from core.models import Message, PortalAccess
from core.portal_message import PortalMessage
from portal.reader.access import READABLE_KINDS, live_access, recipient_session, signed_in_context
from portal.reader.people import join_names, short_date, short_name
from portal.state import portal

INBOX_LIMIT = 200  # messages read for one page (a conversation counts each of its messages)


@dataclasses.dataclass
class Conversation:
    first: tuple[Message, PortalMessage]
    last: tuple[Message, PortalMessage]
    senders: list[str]
    count: int = 1
    unread: bool = False


async def inbox(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        current = await recipient_session(s, request)
        stmt = (
            select(Message, PortalAccess)
            .join(PortalAccess, PortalAccess.message_id == Message.id)
            .where(
                PortalAccess.tenant_id == current.tenant_id,
                Message.tenant_id == current.tenant_id,
                func.lower(PortalAccess.recipient) == current.email,
                PortalAccess.kind.in_(READABLE_KINDS),
                Message.meta_object_id.is_not(None),
                Message.portal_expired_at.is_(None),
                *live_access(),
            )
            .order_by(Message.received_at.desc(), Message.id)
            .limit(INBOX_LIMIT)
        )
        threads: dict[str, Conversation] = {}
        seen: dict[str, bool] = {}  # message id -> unread
        for msg, access in (await s.execute(stmt)).all():
            unread = access.kind == "recipient" and access.first_opened_at is None
            if msg.id in seen:
                if unread and not seen[msg.id]:
                    seen[msg.id] = True
                    threads[msg.thread_id or msg.id].unread = True
                continue
            seen[msg.id] = unread
            assert msg.meta_object_id is not None
            pm = PortalMessage.from_json(
                await st.services.vault.read(s, current.tenant_id, msg.meta_object_id)
            )
            who = "you" if access.kind == "author" else short_name(pm.sender, current.email)
            tid = msg.thread_id or msg.id
            conv = threads.get(tid)
            if conv is None:  # newest first: the first one met is the latest activity
                threads[tid] = Conversation((msg, pm), (msg, pm), [who], 1, unread)
                continue
            conv.first = (msg, pm)  # older messages come later
            conv.count += 1
            conv.unread = conv.unread or unread
            if who not in conv.senders:
                conv.senders.append(who)
        items = []
        for conv in threads.values():
            last_msg, last_pm = conv.last
            first_pm = conv.first[1]
            items.append(
                {
                    "id": last_msg.id,
                    "who": join_names(list(reversed(conv.senders))),
                    "subject": clean(first_pm.subject),
                    "date": short_date(last_pm.date, last_msg.received_at),
                    "count": conv.count,
                    "unread": conv.unread,
                }
            )
        ctx = await signed_in_context(s, current)
    return st.pages.render("reader/inbox.html", {**ctx, "items": items})
