"""What the support area's handlers share: the pre-session nonce cookie and CSRF checks of
the sign-in forms, the session of one kind, and the support mailer built from the portal's
state."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from branding.support_mail import support_mailer
from core.models import PortalSession
from portal import sessions
from portal.forms import field, read_form
from portal.security import (
    PRE_COOKIE,
    check_pre_session,
    check_session_token,
    same_origin_request,
)
from portal.state import PortalState, portal
from support.notify import Mailer

AGENT_LOGIN_FAILURES = 10  # per hour, per address and per IP


def mailer(st: PortalState) -> Mailer:
    """Renders, seals and queues the support mails (``support.notify``)."""
    return support_mailer(
        st.services.vault,
        sender_address=st.settings.sender_address,
        portal_url=st.settings.portal_base_url,
    )


def nonce_of(request: Request) -> str | None:
    value = request.cookies.get(PRE_COOKIE)
    return value if value and len(value) <= 64 else None


def with_nonce(request: Request, response: Response, nonce: str) -> Response:
    if nonce != request.cookies.get(PRE_COOKIE):
        response.set_cookie(
            PRE_COOKIE, nonce, path="/", secure=True, httponly=True, samesite="strict"
        )
    return response


async def pre_checked(request: Request, purpose: str) -> tuple[PortalState, FormData, str]:
    st = portal(request)
    if not same_origin_request(request, st.origins):
        raise HTTPException(403)
    form = await read_form(request)
    nonce = nonce_of(request)
    if not check_pre_session(st.csrf_key, nonce, field(form, "csrf"), purpose):
        raise HTTPException(403)
    return st, form, nonce or ""


async def session_form(request: Request, row: PortalSession) -> FormData:
    if not same_origin_request(request, portal(request).origins):
        raise HTTPException(403)
    form = await read_form(request)
    if not check_session_token(row.csrf_token, field(form, "csrf")):
        raise HTTPException(403)
    return form


async def session_of(s: AsyncSession, request: Request, kind: str) -> PortalSession | None:
    row = await sessions.load(s, request)
    return row if row is not None and row.kind == kind else None
