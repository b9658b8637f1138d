"""What the support area's handlers share: the session of one kind and the CSRF check of its
forms and the support mailer built from the portal's state. (The pre-session forms of the
sign-in pages are :mod:`portal.signin.steps`.)"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request

from branding.support_mail import support_mailer
from core.models import PortalSession
from portal import sessions
from portal.forms import field, read_form
from portal.security import (
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
