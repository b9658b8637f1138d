"""``/messages/{id}/reply[?all=1]``: a secure reply (or reply to all) written in the portal.

GET shows who the reply goes to, in words, a text area, a file input and the original
quoted below. POST (multipart, bounded by ``smtp_max_message_size``) builds the reply as a
proper mail threaded with ``In-Reply-To`` / ``References`` and stores it as a received
message, so the gateway's pipeline (policy, sealing, archive, evidence) delivers it like any
other; then back to the conversation with a notice.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from conversations.compose import Draft
from conversations.modes import may_reply, reply_mode, reply_recipients
from portal.reader import refusals
from portal.reader.access import load_message, recipient_session, signed_in_context
from portal.reader.message import human_size
from portal.reader.writing import (
    Original,
    author_address,
    load_original,
    msgid_domain,
    prefixed,
    quote,
    rate_limited,
    send,
    sentence,
    shown,
    threading_headers,
)
from portal.security import check_session_token, same_origin_request
from portal.state import PortalState, portal
from portal.uploads import Posted, TooLarge, encoded_size, read_posted


def _recipients(
    original: Original, reply_all: bool
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    pm = original.pm
    return reply_recipients(
        original.current.email,
        pm.sender,
        pm.to,
        pm.cc,
        reply_all=reply_all,
        mail_from=original.msg.mail_from,
    )


async def _context(
    st: PortalState, s: AsyncSession, original: Original, reply_all: bool
) -> dict[str, Any]:
    to, cc = _recipients(original, reply_all)
    ctx = await signed_in_context(s, original.current)
    ctx.update(
        message_id=original.msg.id,
        reply_all=reply_all,
        goes_to=sentence(to + cc),
        subject=prefixed("Re:", original.pm.subject),
        quoted=quote(original),
        max_size=human_size(st.settings.smtp_max_message_size * 3 // 4),
        text="",
        error="",
    )
    return ctx


def _refusal(st: PortalState, original: Original, reply_all: bool) -> Response | None:
    mode = reply_mode(original.msg, original.tenant)
    if may_reply(mode, reply_all):
        return None
    return refusals.reply_refused(st, original, mode, reply_all)


async def reply_form(request: Request) -> Response:
    st = portal(request)
    reply_all = request.query_params.get("all") == "1"
    async with st.services.db.session() as s:
        original = await load_original(st, s, request)
        refused = _refusal(st, original, reply_all)
        if refused is not None:
            return refused
        ctx = await _context(st, s, original, reply_all)
    return st.pages.render("reader/reply.html", ctx)


async def precheck(request: Request) -> PortalState:
    """Before a byte of the body is read: same origin, a recipient session and a live
    access to the message (a stranger's upload is never spooled)."""
    st = portal(request)
    if not same_origin_request(request, st.origins):
        raise HTTPException(403)
    async with st.services.db.session() as s:
        current = await recipient_session(s, request)
        await load_message(st, s, current, request.path_params["message_id"])
    return st


async def reply_send(request: Request) -> Response:
    st = await precheck(request)
    try:
        posted = await read_posted(request, st.settings.smtp_max_message_size)
    except TooLarge:
        return refusals.too_large(st)
    if posted is None:
        raise HTTPException(400)
    try:
        return await _send(st, request, posted)
    finally:
        await posted.close()


async def _send(st: PortalState, request: Request, posted: Posted) -> Response:
    reply_all = posted.text("all") == "1"
    async with st.services.db.session() as s:
        original = await load_original(st, s, request)
        if not check_session_token(original.current.csrf_token, posted.text("csrf", 200)):
            raise HTTPException(403)
        refused = _refusal(st, original, reply_all)
        if refused is not None:
            return refused
        if await rate_limited(s, original.current):
            return refusals.too_many(st, original)
        text = posted.text("text").replace("\r\n", "\n")
        ctx = await _context(st, s, original, reply_all)
        ctx["text"] = text
        to, cc = _recipients(original, reply_all)
        weight = sum(encoded_size(u.size) for u in posted.uploads) + 2 * len(text)
        if not text.strip() and not posted.uploads:
            ctx["error"] = "Write a reply or attach a file before you send it."
            return st.pages.render("reader/reply.html", ctx, status=400)
        if weight + len(ctx["quoted"]) * 2 > st.settings.smtp_max_message_size:
            ctx["error"] = (
                f"Your files are too large to send: a secure message can carry up to "
                f"{ctx['max_size']} of attachments. Remove some and attach them again."
            )
            return st.pages.render("reader/reply.html", ctx, status=413)
        if not to and not cc:
            ctx["error"] = "There is no one this reply could go to."
            return st.pages.render("reader/reply.html", ctx, status=400)
        in_reply_to, references = await threading_headers(st, s, original)
        draft = Draft(
            from_addr=await author_address(original),
            to=shown(to),
            cc=shown(cc),
            subject=ctx["subject"],
            text=(text.rstrip() + "\n\n" if text.strip() else "") + ctx["quoted"] + "\n",
            attachments=posted.uploads,
            in_reply_to=in_reply_to,
            references=references,
            msgid_domain=await msgid_domain(s, original.msg.tenant_id),
        )
    recipients = [address for _name, address in to + cc]
    await send(st, request, original, draft, recipients, "reply")
    return RedirectResponse(f"/messages/{original.msg.id}?notice=replied", status_code=303)
