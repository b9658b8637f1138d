"""Who ``/account`` is for: any signed-in recipient, sender or admin (the identity is the
session's tenant and address), with the CSRF check of its posts and the words it uses."""

from __future__ import annotations

import time

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request

from core.models import PortalSession
from portal import sessions
from portal.admin.doors import SENDER_DOOR, current_user
from portal.forms import field, read_form
from portal.security import check_session_token, same_origin_request
from portal.state import portal

KINDS = ("recipient", "sender", "admin")
HOMES = {
    "recipient": ("/inbox", "Inbox"),
    "sender": ("/sent", "Sent messages"),
    "admin": ("/admin", "Administration"),
}
FACTORS = {
    "code": "with an emailed code",
    "passkey": "with your passkey",
    "device": "on a remembered device",
}
_MONTHS = (
    "January February March April May June July August September October November December"
).split()


async def account_session(s: AsyncSession, request: Request) -> PortalSession:
    """The session /account serves; 401 for none. A sender's or admin's session is checked
    against the users table like every /sent and /admin page (a removed user is out)."""
    row = await sessions.load(s, request)
    if row is None or row.kind not in KINDS or not row.tenant_id:
        raise HTTPException(401)
    if row.kind != "recipient" and await current_user(s, request, SENDER_DOOR) is None:
        raise HTTPException(401)
    return row


async def checked(request: Request, s: AsyncSession) -> tuple[PortalSession, FormData]:
    """The session and form of a signed-in POST to /account (origin and CSRF token)."""
    if not same_origin_request(request, portal(request).origins):
        raise HTTPException(403)
    row = await account_session(s, request)
    form = await read_form(request)
    if not check_session_token(row.csrf_token, field(form, "csrf")):
        raise HTTPException(403)
    return row, form


def day(epoch: float, today: float | None = None) -> str:
    """``today``, ``yesterday`` or ``5 December 2026`` (UTC)."""
    t, now = time.gmtime(epoch), time.gmtime(time.time() if today is None else today)
    if (t.tm_year, t.tm_yday) == (now.tm_year, now.tm_yday):
        return "today"
    y = time.gmtime((time.time() if today is None else today) - 86400)
    if (t.tm_year, t.tm_yday) == (y.tm_year, y.tm_yday):
        return "yesterday"
    return f"{t.tm_mday} {_MONTHS[t.tm_mon - 1]} {t.tm_year}"
