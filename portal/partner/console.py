"""Opening a tenant's admin console as the partner, and coming back. The partner's person
gets a session of kind ``partner-as`` for that tenant (it acts as an admin there; every
change is audited as ``partner:<address>``), keeping the absolute lifetime of the partner
session it came from; opening and leaving are written to the tenant's own audit log. "Back
to the partner console" turns it into a partner session again without a new code."""

from __future__ import annotations

from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core.accounts.partner_tenants import partner_tenant
from core.audit import audit
from core.errors import NotFound
from core.models import PortalSession, now
from portal import sessions
from portal.admin.doors import PARTNER_AS_KIND, checked_form, current_admin
from portal.partner.doors import SESSION_KIND, partner_post
from portal.state import portal


async def _switch(
    s: AsyncSession, request: Request, came_from: PortalSession, tenant_id: str, kind: str
) -> str:
    """Replace the browser's session with one of ``kind``; returns the cookie secret."""
    await sessions.destroy(s, request)
    secret, row = await sessions.create(s, tenant_id, came_from.email, kind)
    row.created_at = came_from.created_at  # the absolute lifetime carries over
    row.expires_at = min(now() + sessions.IDLE_TIMEOUT, row.created_at + sessions.ABSOLUTE_TIMEOUT)
    return secret


async def open_console(request: Request) -> Response:
    tenant_id = request.path_params["tenant_id"]
    async with partner_post(request, admins_only=False) as (_st, s, who, _form):
        try:
            tenant = await partner_tenant(s, who.partner.id, tenant_id)
        except NotFound:
            raise HTTPException(404) from None
        if tenant.standing == "terminated":
            raise HTTPException(404)
        secret = await _switch(s, request, who.session, tenant.id, PARTNER_AS_KIND)
        await audit(
            s, tenant.id, who.actor, "partner.console.open", who.user.id, partner=who.partner.name
        )
        await s.commit()
    response = RedirectResponse("/admin", status_code=303)
    sessions.set_cookie(response, secret)
    return response


async def back_to_partner(request: Request) -> Response:
    async with portal(request).services.db.session() as s:
        admin = await current_admin(s, request)
        if admin is None or not admin.partner or admin.session.kind != PARTNER_AS_KIND:
            raise HTTPException(404)
        await checked_form(request, admin)
        partner_id = admin.tenant.partner_id
        assert partner_id is not None
        secret = await _switch(s, request, admin.session, partner_id, SESSION_KIND)
        await audit(
            s, admin.tenant.id, admin.actor, "partner.console.close", admin.user.id,
            partner=admin.partner,
        )  # fmt: skip
        await s.commit()
        name = admin.tenant.display_name or admin.tenant.name
    said = quote(f"You left the admin console of {name}.")
    response = RedirectResponse(f"/partner/tenants/{admin.tenant.id}?said={said}", status_code=303)
    sessions.set_cookie(response, secret)
    return response
