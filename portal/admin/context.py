"""What every admin page starts with: the signed-in officer (or the way to the sign-in page)
and the template context (branding, the user, the CSRF token)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from branding.notifications import format_time
from portal.admin.doors import ADMIN_ROLES, Admin, checked_form, current_admin
from portal.pages import branding_of
from portal.state import PortalState


def page_context(admin: Admin, **extra: Any) -> dict[str, Any]:
    return {
        **branding_of(admin.tenant),
        "admin_email": admin.user.email,
        "admin_role": admin.user.role,
        "csrf_token": admin.session.csrf_token,
        "acting_partner": admin.partner,
        "fmt_time": format_time,
        **extra,
    }


async def quarantine_officer(
    st: PortalState, s: AsyncSession, request: Request
) -> Admin | Response:
    admin = await current_admin(s, request)
    if admin is None:
        return RedirectResponse("/admin/login", status_code=303)
    if not admin.may("quarantine"):
        raise HTTPException(404)
    return admin


async def officer(st: PortalState, request: Request) -> Admin | Response:
    async with st.services.db.session() as s:
        admin = await current_admin(s, request)
    if admin is None:
        return RedirectResponse("/admin/login", status_code=303)
    if admin.user.role not in ADMIN_ROLES:
        raise HTTPException(404)
    return admin


@contextlib.asynccontextmanager
async def admin_post(
    request: Request, *, admins_only: bool = True
) -> AsyncIterator[tuple[PortalState, AsyncSession, Admin, FormData]]:
    """A signed-in form post of the console: the officer (401 without one), the checked form
    (Origin and CSRF token), and 404 for a compliance officer where only admins may act."""
    from portal.state import portal

    st = portal(request)
    async with st.services.db.session() as s:
        admin = await current_admin(s, request)
        if admin is None:
            raise HTTPException(401)
        form = await checked_form(request, admin)
        if admins_only and admin.user.role != "admin":
            raise HTTPException(404)
        yield st, s, admin, form
