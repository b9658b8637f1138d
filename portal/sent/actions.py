"""The sender's controls on ``/sent/{id}`` (SPEC §5, contract: sender URLs): revoke one
recipient or all (``POST /sent/{id}/revoke``, field ``recipient``, empty = all; ``GET`` the
same path asks to confirm), change the expiry (``POST /sent/{id}/expiry``, field
``expires``: a duration like 2h or 7d, a date, or ``now``), and resend a notification with a
new link (``POST /sent/{id}/resend``, field ``recipient``).

Every POST is same-origin and carries the session's CSRF token; each change goes through
:mod:`conversations.control` (or :mod:`portal.sent.resend`), is recorded as a message event,
audited, and answered with a 303 back to the message with a notice. A value that cannot be
used answers the message page again with the reason (400), never a 500.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from conversations import control
from conversations.options import parse_when
from core.errors import NotFound
from core.models import Message, now
from portal.admin.context import page_context
from portal.admin.doors import Admin, checked_form
from portal.forms import field
from portal.sent.pages import own_message, render_message, signed_in
from portal.sent.resend import CannotResend, resend
from portal.sent.status import statuses
from portal.state import PortalState, portal

MAX_FIELD = 320


def back(message_id: str, done: str) -> RedirectResponse:
    return RedirectResponse(f"/sent/{message_id}?done={done}", status_code=303)


def when_of(text: str, at: float) -> float:
    """The expiry a sender typed: ``now``, a duration from now, or a date (a past date ends
    access at once); ValueError with a sentence for people otherwise."""
    if not text.strip():
        raise ValueError("Enter when access should end: a duration like 2h or 7d, or a date.")
    try:
        return parse_when(text[:80], at, allow_past=True)
    except ValueError:
        raise ValueError(
            f"“{text.strip()[:40]}” is not a time we understand. Enter a duration like 2h or "
            "7d, a date like 2025-03-31, or now."
        ) from None


async def _mine(s: AsyncSession, request: Request) -> tuple[Admin, Message] | Response:
    user = await signed_in(s, request)
    if isinstance(user, Response):
        return user
    return user, await own_message(s, user, request.path_params["message_id"])


async def confirm_revoke(request: Request) -> Response:
    """``GET /sent/{id}/revoke[?recipient=]``: who would lose access, and the button."""
    st = portal(request)
    async with st.services.db.session() as s:
        found = await _mine(s, request)
        if isinstance(found, Response):
            return found
        user, msg = found
        recipient = request.query_params.get("recipient", "")[:MAX_FIELD].strip().lower()
        live = [r for r in (await statuses(s, user.tenant.id, [msg.id]))[msg.id] if r.live]
        if recipient:
            live = [r for r in live if r.rcpt.lower() == recipient]
            if not live:
                raise HTTPException(404)
    ctx = page_context(user, message=msg, live=live, recipient=recipient)
    return st.pages.render("sent/revoke.html", ctx)


async def revoke(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        found = await _mine(s, request)
        if isinstance(found, Response):
            return found
        user, msg = found
        form = await checked_form(request, user)
        recipient = field(form, "recipient")[:MAX_FIELD].strip() or None
        try:
            done = await control.revoke(s, msg, user.actor, recipient)
        except NotFound:
            return await _again(st, s, user, msg, "That recipient has no portal copy to revoke.")
        await s.commit()
    return back(msg.id, "revoked" if done else "none-revoked")


async def expiry(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        found = await _mine(s, request)
        if isinstance(found, Response):
            return found
        user, msg = found
        form = await checked_form(request, user)
        typed = field(form, "expires")
        try:
            at = when_of(typed, now())
        except ValueError as exc:
            return await _again(st, s, user, msg, str(exc), expires=typed[:80])
        changed = await control.set_expiry(s, msg, user.actor, at)
        if not changed:
            return await _again(
                st, s, user, msg, "This message has no portal copies, so it has no expiry."
            )
        await s.commit()
    return back(msg.id, "expiry")


async def resend_notification(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        found = await _mine(s, request)
        if isinstance(found, Response):
            return found
        user, msg = found
        form = await checked_form(request, user)
        recipient = field(form, "recipient")[:MAX_FIELD]
        try:
            await resend(st.services, s, user.tenant, msg, recipient, user.actor)
        except NotFound:
            return await _again(st, s, user, msg, "That recipient has no portal copy to resend.")
        except CannotResend as exc:
            return await _again(st, s, user, msg, str(exc))
        await s.commit()
    return back(msg.id, "resent")


async def _again(
    st: PortalState, s: AsyncSession, user: Admin, msg: Message, error: str, *, expires: str = ""
) -> Response:
    # nothing of the refused change is committed: the session ends without a commit
    return await render_message(st, s, user, msg, error=error, expires=expires, status=400)
