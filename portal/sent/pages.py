"""``/sent``: a sender's own messages, their status and the evidence (SPEC §5).

A tenant user signs in at ``/sent/login`` with the same one-time-code machinery as
``/admin`` (:data:`portal.admin.doors.SENDER_DOOR`); an officer already signed in at
``/admin`` is let in too. Every lookup is scoped by the session's tenant *and* the envelope
sender (``Message.mail_from``, case-insensitive) being the user's address: someone else's
message, in this tenant or another, answers the same 404 as one that does not exist.

Subjects are sealed: they are read from the sealed metadata (or the original's header block)
through the vault for the page being shown, and never stored anywhere.
"""

from __future__ import annotations

import contextlib
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from conversations import events, guards
from core import quarantine
from core.audit import audit
from core.errors import NotFound, PermanentError
from core.mime_text import clean, header_text
from core.models import Message
from core.portal_message import PortalMessage
from portal.admin.context import page_context
from portal.admin.decisions import explain
from portal.admin.doors import SENDER_DOOR, SESSION_KIND, Admin, current_user
from portal.sent.status import statuses
from portal.sent.timeline import said
from portal.state import PortalState, portal

PAGE_SIZE = 25
MAX_PAGE = 10_000
HEADER_LIMIT = 64 * 1024  # how much of an original is read to find its Subject


async def signed_in(s: AsyncSession, request: Request) -> Admin | Response:
    user = await current_user(s, request, SENDER_DOOR)
    if user is None:
        return RedirectResponse(SENDER_DOOR.login_path, status_code=303)
    return user


_signed_in = signed_in  # the earlier name, for callers that still use it


def _officer(user: Admin) -> bool:
    """Link to /admin only from an admin session (a sender's session gets 404 there)."""
    return user.session.kind == SESSION_KIND


def _own(user: Admin) -> tuple[Any, ...]:
    return (
        Message.tenant_id == user.tenant.id,
        func.lower(Message.mail_from) == user.user.email.strip().lower(),
    )


async def _subject(st: PortalState, s: AsyncSession, msg: Message) -> str:
    try:
        if msg.meta_object_id:
            meta = await st.services.vault.read(s, msg.tenant_id, msg.meta_object_id)
            return clean(PortalMessage.from_json(meta).subject)
        head = bytearray()
        stream = await st.services.vault.stream(s, msg.tenant_id, msg.raw_object_id)
        async with contextlib.aclosing(stream):  # type: ignore[type-var]
            async for chunk in stream:
                head += chunk
                if b"\r\n\r\n" in head or b"\n\n" in head or len(head) >= HEADER_LIMIT:
                    break
        parsed = BytesHeaderParser(policy=default_policy).parsebytes(bytes(head[:HEADER_LIMIT]))
        return header_text(parsed, "subject")
    except (NotFound, PermanentError, ValueError, LookupError):
        return "(not available)"


def _page_number(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    return min(int(raw), MAX_PAGE) if raw.isdigit() and 0 < len(raw) < 6 and int(raw) > 0 else 1


async def sent_list(request: Request) -> Response:
    st = portal(request)
    page = _page_number(request)
    async with st.services.db.session() as s:
        user = await signed_in(s, request)
        if isinstance(user, Response):
            return user
        found = (
            (
                await s.execute(
                    select(Message)
                    .where(*_own(user))
                    .order_by(Message.received_at.desc(), Message.id.desc())
                    .offset((page - 1) * PAGE_SIZE)
                    .limit(PAGE_SIZE + 1)
                )
            )
            .scalars()
            .all()
        )
        more, found = len(found) > PAGE_SIZE, found[:PAGE_SIZE]
        status = await statuses(s, user.tenant.id, (m.id for m in found))
        items = [
            {
                "message": m,
                "subject": await _subject(st, s, m),
                "recipients": status[m.id],
            }
            for m in found
        ]
    ctx = page_context(user, items=items, page=page, more=more, admin_link=_officer(user))
    return st.pages.render("sent/list.html", ctx)


async def own_message(s: AsyncSession, user: Admin, message_id: str) -> Message:
    """The signed-in sender's message; 404 for anyone else's (in this tenant or another) as
    for one that does not exist."""
    msg = (
        await s.execute(select(Message).where(Message.id == message_id[:40], *_own(user)))
    ).scalar_one_or_none()
    if msg is None:
        raise HTTPException(404)
    return msg


NOTICES = {
    "revoked": "Done: the access was revoked. It stops working at once, also for a page "
    "already open.",
    "none-revoked": "Nobody's access was live, so nothing changed.",
    "expiry": "Done: the new expiry applies to every recipient from now on.",
    "resent": "Done: a new link is on its way. The old link no longer works.",
}


async def render_message(
    st: PortalState,
    s: AsyncSession,
    user: Admin,
    msg: Message,
    *,
    notice: str = "",
    error: str = "",
    expires: str = "",
    status: int = 200,
    composed: bool = False,
) -> Response:
    """One sent message: its recipients' status in sentences, its events, the sender's
    actions and "why was this handled this way?" (the same as ``/admin/messages/{id}``)."""
    decisions = [
        {"row": d, **explain(d)} for d in await quarantine.decisions(s, msg.id, user.tenant.id)
    ]
    recipients = (await statuses(s, user.tenant.id, [msg.id]))[msg.id]
    timeline = [said(e) for e in await events.of_message(s, user.tenant.id, msg.id)]
    subject = await _subject(st, s, msg)
    guard = await guards.guard_of(s, user.tenant.id, msg.id)
    ctx = page_context(
        user,
        message=msg,
        guard=guard,
        subject=subject,
        recipients=recipients,
        live=[r for r in recipients if r.live],
        portal_copies=any(r.portal for r in recipients),
        timeline=timeline,
        decisions=decisions,
        notice=NOTICES.get(notice, ""),
        error=error,
        expires=expires,
        admin_link=_officer(user),
        composed=composed,
    )
    return st.pages.render("sent/message.html", ctx, status=status)


async def sent_message(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        user = await signed_in(s, request)
        if isinstance(user, Response):
            return user
        msg = await own_message(s, user, request.path_params["message_id"])
        await audit(s, user.tenant.id, user.actor, "sent.message.viewed", msg.id)
        await s.commit()
        return await render_message(
            st,
            s,
            user,
            msg,
            notice=request.query_params.get("done", "")[:20],
            composed=request.query_params.get("notice") == "composed",
        )
