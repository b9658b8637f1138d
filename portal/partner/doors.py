"""Who is signed in to ``/partner``: a partner's admin or technician, with a server-side
session of kind ``partner`` whose tenant column holds the partner's id (a partner session is
therefore never valid on a tenant's own portal host). The role is checked on every request,
so a removed person loses access at once. Partner technicians watch and set up tenants;
only partner admins change plans, standing, people, keys and the default brand."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from branding.notifications import format_time
from core.accounts.models import PartnerUser
from core.models import Partner, PortalSession
from portal import sessions
from portal.admin.doors import Door
from portal.forms import field, read_form
from portal.security import check_session_token, same_origin_request
from portal.state import PortalState, portal

SESSION_KIND = "partner"
PARTNER_DOOR = Door(
    "partner",
    ("partner-admin", "partner-tech"),
    "partner-code",
    "__Host-sealmail_partner_pending",
    (SESSION_KIND,),
    "/partner",
    "partner/login.html",
    "partner/code.html",
)


@dataclasses.dataclass(frozen=True)
class PartnerPerson:
    session: PortalSession
    user: PartnerUser
    partner: Partner

    @property
    def actor(self) -> str:
        return f"partner:{self.user.email}"

    @property
    def is_admin(self) -> bool:
        return self.user.role == "partner-admin"


async def current_partner(s: AsyncSession, request: Request) -> PartnerPerson | None:
    row = await sessions.load(s, request)
    if row is None or row.kind != SESSION_KIND:
        return None
    stmt = (
        select(PartnerUser, Partner)
        .join(Partner, Partner.id == PartnerUser.partner_id)
        .where(PartnerUser.partner_id == row.tenant_id, func.lower(PartnerUser.email) == row.email)
    )
    found = (await s.execute(stmt)).first()
    return PartnerPerson(row, found[0], found[1]) if found is not None else None


def page_context(who: PartnerPerson, **extra: Any) -> dict[str, Any]:
    return {
        "partner_name": who.partner.name,
        "partner_email": who.user.email,
        "partner_role": who.user.role,
        "is_partner_admin": who.is_admin,
        "csrf_token": who.session.csrf_token,
        "fmt_time": format_time,
        **extra,
    }


async def signed_in(st: PortalState, request: Request) -> PartnerPerson | Response:
    """The signed-in partner person of a page, or the redirect to the sign-in page."""
    async with st.services.db.session() as s:
        who = await current_partner(s, request)
    if who is None:
        return RedirectResponse(PARTNER_DOOR.login_path, status_code=303)
    return who


async def checked(request: Request, who: PartnerPerson, *, large: bool = False) -> FormData:
    if not same_origin_request(request, portal(request).origins):
        raise HTTPException(403)
    if large:
        try:
            form = await request.form(max_files=1, max_fields=20, max_part_size=3 * 1024 * 1024)
        except Exception:  # noqa: BLE001 - any malformed body is the client's error
            raise HTTPException(400) from None
    else:
        form = await read_form(request)
    if not check_session_token(who.session.csrf_token, field(form, "csrf")):
        raise HTTPException(403)
    return form


@contextlib.asynccontextmanager
async def partner_post(
    request: Request, *, admins_only: bool = True, large: bool = False
) -> AsyncIterator[tuple[PortalState, AsyncSession, PartnerPerson, FormData]]:
    """A signed-in form post of the partner console (401 without a session, 403 without the
    Origin and CSRF token, 404 for a technician where only partner admins may act)."""
    st = portal(request)
    async with st.services.db.session() as s:
        who = await current_partner(s, request)
        if who is None:
            raise HTTPException(401)
        form = await checked(request, who, large=large)
        if admins_only and not who.is_admin:
            raise HTTPException(404)
        # kept readable after a rollback of the action (the page that explains it needs them)
        for row in (who.session, who.user, who.partner):
            s.expunge(row)
        yield st, s, who, form
