"""What every admin page starts with: the signed-in officer (or the way to the sign-in page)
and the template context (branding, the user, the CSRF token)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from branding.notifications import format_time
from portal.admin.doors import ADMIN_ROLES, Admin, current_admin
from portal.pages import branding_of
from portal.state import PortalState


def page_context(admin: Admin, **extra: Any) -> dict[str, Any]:
    return {
        **branding_of(admin.tenant),
        "admin_email": admin.user.email,
        "admin_role": admin.user.role,
        "csrf_token": admin.session.csrf_token,
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
