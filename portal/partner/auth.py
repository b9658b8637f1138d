"""Signing in to ``/partner`` with an emailed one-time code (the portal's one email-code
sign-in, :mod:`portal.signin`): every address gets the same "code sent" page; only a partner's
admin or technician gets a mail. The code mail is sealed under the partner's own key, so a
partner with no tenant yet can sign in and create its first."""

from __future__ import annotations

import logging

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from branding.partner_mail import mail_partner_code
from core.accounts.models import PartnerUser
from core.addresses import normalize, problem
from core.audit import audit
from core.ids import new_token
from core.models import Partner
from portal import sessions
from portal.admin.auth import WRONG, code_page, login_page
from portal.forms import field
from portal.hosts import host_tenant
from portal.partner.doors import PARTNER_DOOR, SESSION_KIND, checked, current_partner
from portal.signin import by_address
from portal.signin.by_address import Identity, start
from portal.signin.codes import minutes
from portal.signin.steps import (
    TOO_MANY,
    count,
    limited,
    nonce_of,
    pre_checked,
    set_pending_cookie,
    with_nonce,
)
from portal.state import client_ip, portal

log = logging.getLogger("sealmail.portal.partner")
DOOR = PARTNER_DOOR


async def _not_on_tenant_host(request: Request) -> None:
    """The partner console lives on the operator's host, never on a tenant's own."""
    async with portal(request).services.db.session() as s:
        if await host_tenant(s, request) is not None:
            raise HTTPException(404)


async def login_form(request: Request) -> Response:
    await _not_on_tenant_host(request)
    st = portal(request)
    async with st.services.db.session() as s:
        if await current_partner(s, request) is not None:
            return RedirectResponse(DOOR.home, status_code=303)
    nonce = nonce_of(request) or new_token(24)
    return with_nonce(request, login_page(st, DOOR, nonce), nonce)


async def _person(s: AsyncSession, email: str) -> PartnerUser | None:
    stmt = (
        select(PartnerUser)
        .join(Partner, Partner.id == PartnerUser.partner_id)
        .where(func.lower(PartnerUser.email) == email)
        .order_by(Partner.name)
        .limit(1)
    )
    return (await s.execute(stmt)).scalars().first()


async def send_code(request: Request) -> Response:
    await _not_on_tenant_host(request)
    st, form, nonce = await pre_checked(request, f"{DOOR.name}-login")
    email = normalize(field(form, "email"))
    if problem(email) is not None:
        return login_page(
            st, DOOR, nonce, error="Enter your email address.", status=400, email=email
        )
    ip = client_ip(request)
    buckets = DOOR.signin.send_limits(email, ip)
    async with st.services.db.session() as s:
        if await limited(s, buckets):
            return st.pages.error(429, headers=TOO_MANY)
        person = await _person(s, email)
        secret, code = await start(
            s, request, DOOR.signin, st.code_key, person.id if person else ""
        )
        if person is not None:
            partner = await s.get(Partner, person.partner_id)
            assert partner is not None
            await mail_partner_code(st.services, s, partner, person.email, code, minutes())
            await audit(s, person.partner_id, person.email, "partner.code.sent", person.id, ip=ip)
        else:
            log.info("partner sign-in asked for an address that may not sign in")
        await count(s, buckets)
        await s.commit()
    return set_pending_cookie(code_page(st, DOOR, nonce, email), DOOR.pending_cookie, secret)


async def verify(request: Request) -> Response:
    async def identify(s: AsyncSession, subject: str) -> Identity | None:
        person = await s.get(PartnerUser, subject) if subject else None
        if person is None:
            return None
        return Identity(
            person.partner_id, person.email, person.id, signin_details={"partner": True}
        )

    return await by_address.verify(
        request,
        DOOR.signin,
        identify=identify,
        session_kind=SESSION_KIND,
        home=DOOR.home,
        wrong=lambda st, nonce: code_page(st, DOOR, nonce, "", error=WRONG, status=400),
    )


async def logout(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        who = await current_partner(s, request)
        if who is None:
            return RedirectResponse(DOOR.login_path, status_code=303)
        await checked(request, who)
        await sessions.destroy(s, request)
        await audit(s, who.partner.id, who.actor, "partner.signout", who.user.id)
        await s.commit()
    response = RedirectResponse(DOOR.login_path, status_code=303)
    sessions.clear_cookie(response)
    return response
