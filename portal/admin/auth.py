"""Signing in to ``/admin`` (and to ``/sent``): email → one-time code through the outbox →
a server-side session bound to one tenant and one user, by the one email-code sign-in
(:mod:`portal.signin`, a door where people type their address).

Two doors use this (:class:`portal.admin.doors.Door`): ``/admin/login`` lets in admin and
compliance users with a session of kind ``admin``; ``/sent/login`` lets in any tenant user
(sender, admin, compliance) with a session of kind ``sender`` that opens only ``/sent`` — an
admin page answers such a session 404. Each door has its own pending kind and cookie, so a
code asked for at one door cannot be used at the other.

Every address gets the same "code sent" page; only a user the door lets in gets a mail. The
pending sign-in holds the user's id; the role is checked again when the code is entered.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from conversations.protection import defaults
from core.addresses import normalize, problem
from core.audit import audit
from core.ids import new_token
from core.models import Tenant, User
from portal import sessions
from portal.admin import fast_doors
from portal.admin.doors import ADMIN_DOOR, ADMIN_ROLES, Door, checked_form, current_user
from portal.forms import field
from portal.hosts import host_tenant
from portal.security import pre_session_token
from portal.sent.senders import tenant_of_domain
from portal.signin import by_address, codes, devices, passkeys
from portal.signin.by_address import Identity, start
from portal.signin.steps import (
    TOO_MANY,
    count,
    limited,
    mail_code,
    nonce_of,
    pre_checked,
    set_pending_cookie,
    with_nonce,
)
from portal.state import PortalState, client_ip, portal

log = logging.getLogger("sealmail.portal.admin")


def login_page(
    st: PortalState,
    door: Door,
    nonce: str,
    *,
    error: str = "",
    status: int = 200,
    email: str = "",
    remembered: list[dict[str, str]] | None = None,
) -> Response:
    """The door's sign-in page: the address form, "Sign in with a passkey" (shown by
    /static/passkeys.js where the browser can) and "Continue as ..." for ``remembered``."""
    ctx: dict[str, Any] = {
        "csrf": pre_session_token(st.csrf_key, nonce, f"{door.name}-login"),
        "error": error,
        "email": email,
        "door_home": door.home,
        "remembered": remembered or [],
    }
    return st.pages.render(door.login_template, ctx, status=status)


def code_page(
    st: PortalState,
    door: Door,
    nonce: str,
    email: str,
    *,
    error: str = "",
    status: int = 200,
    remember_days: int = 0,
) -> Response:
    ctx: dict[str, Any] = {
        "remember_days": remember_days,
        "csrf": pre_session_token(st.csrf_key, nonce, f"{door.name}-verify"),
        "masked": codes.mask_address(email) if email else "",
        "digits": codes.CODE_DIGITS,
        "minutes": codes.minutes(),
        "error": error,
        "door_home": door.home,
    }
    return st.pages.render(door.code_template, ctx, status=status)


async def login_form(request: Request, door: Door = ADMIN_DOOR) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        if await current_user(s, request, door) is not None:
            return RedirectResponse(door.home, status_code=303)
        remembered = await fast_doors.remembered_here(s, request, door)
    nonce = nonce_of(request) or new_token(24)
    return with_nonce(request, login_page(st, door, nonce, remembered=remembered), nonce)


async def days_shown(s: AsyncSession, email: str, tenant_id: str | None) -> int:
    """The "Remember this device for N days" of the code page: the signing-in tenant's N,
    or, for an address nobody may sign in with, the N of its domain's tenant (or the
    default), so the page does not tell the two apart."""
    if tenant_id is None:
        tenant = await tenant_of_domain(s, email)
        if tenant is None:
            return defaults("").remember_days
        tenant_id = tenant.id
    return await devices.remember_days(s, tenant_id)


async def _officer(
    s: AsyncSession, email: str, roles: tuple[str, ...] = ADMIN_ROLES, only_tenant: str = ""
) -> User | None:
    """The user ``email`` signs in as; on a tenant's own portal host, only that tenant's."""
    stmt = (
        select(User)
        .join(Tenant, Tenant.id == User.tenant_id)
        .where(
            func.lower(User.email) == email,
            User.role.in_(roles),
            Tenant.standing != "terminated",
        )
        .order_by(Tenant.name)
        .limit(1)
    )
    if only_tenant:
        stmt = stmt.where(User.tenant_id == only_tenant)
    return (await s.execute(stmt)).scalars().first()


async def send_code(request: Request, door: Door = ADMIN_DOOR) -> Response:
    st, form, nonce = await pre_checked(request, f"{door.name}-login")
    email = normalize(field(form, "email"))
    if problem(email) is not None:
        return login_page(
            st, door, nonce, error="Enter your email address.", status=400, email=email
        )
    ip = client_ip(request)
    buckets = door.signin.send_limits(email, ip)
    async with st.services.db.session() as s:
        if await limited(s, buckets):
            return st.pages.error(429, headers=TOO_MANY)
        here = await host_tenant(s, request)
        user = await _officer(s, email, door.roles, here.id if here else "")
        rp_id = passkeys.relying_party(request).rp_id
        if user is not None and await passkeys.code_refused(s, user.tenant_id, email, rp_id):
            return login_page(st, door, nonce, error=passkeys.CODE_REFUSED, status=403, email=email)
        days = await days_shown(s, email, user.tenant_id if user else None)
        secret, code = await start(s, request, door.signin, st.code_key, user.id if user else "")
        if user is not None:
            tenant = await s.get(Tenant, user.tenant_id)
            assert tenant is not None
            await mail_code(st, s, tenant, user.email, code)
            await audit(s, user.tenant_id, user.email, f"{door.name}.code.sent", user.id, ip=ip)
        else:
            log.info("%s sign-in asked for an address that may not sign in", door.name)
        await count(s, buckets)
        await s.commit()
    page = code_page(st, door, nonce, email, remember_days=days)
    return set_pending_cookie(page, door.pending_cookie, secret)


WRONG = "That code is not right, or it can no longer be used. Try again or ask for a new one."


async def verify(request: Request, door: Door = ADMIN_DOOR) -> Response:
    async def identify(s: AsyncSession, subject: str) -> Identity | None:
        user = await s.get(User, subject) if subject else None
        if user is None:
            return None
        return Identity(user.tenant_id, user.email, user.id, allowed=user.role in door.roles)

    return await by_address.verify(
        request,
        door.signin,
        identify=identify,
        session_kind=door.session_kinds[0],
        home=door.home,
        wrong=lambda st, nonce: code_page(st, door, nonce, "", error=WRONG, status=400),
    )


async def logout(request: Request, door: Door = ADMIN_DOOR) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        admin = await current_user(s, request, door)
        if admin is None:
            return RedirectResponse(door.login_path, status_code=303)
        await checked_form(request, admin)
        await sessions.destroy(s, request)
        await audit(s, admin.tenant.id, admin.actor, f"{door.name}.signout", admin.user.id)
        await s.commit()
    response = RedirectResponse(door.login_path, status_code=303)
    sessions.clear_cookie(response)
    return response
