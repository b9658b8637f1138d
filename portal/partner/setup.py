"""``/partner/tenants/{id}/setup``: a tenant's setup page in the partner console (issue 14,
item 5) — the same PowerShell and Google Workspace steps, connector tokens and live check as
the tenant's own ``/admin/setup`` (:func:`portal.setup.context.setup_context`), for the
partner's admins and technicians, each action audited in the tenant's log as the partner."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from core.accounts.connector_tokens import issue_token, revoke_token
from core.accounts.partner_tenants import partner_tenant
from core.errors import NotFound, PermanentError
from core.models import Tenant
from core.setup.checks import open_check, read_check
from portal.admin.setup import NO_STORE, NOTICES, wants_json
from portal.partner.doors import PartnerPerson, page_context, partner_post, signed_in
from portal.setup.context import setup_context
from portal.state import PortalState, portal


def _base(tenant_id: str) -> str:
    return f"/partner/tenants/{tenant_id}/setup"


async def _tenant(st: PortalState, who: PartnerPerson, tenant_id: str) -> Tenant:
    async with st.services.db.session() as s:
        try:
            tenant = await partner_tenant(s, who.partner.id, tenant_id)
        except NotFound:
            raise HTTPException(404) from None
    if tenant.standing == "terminated":
        raise HTTPException(404)
    return tenant


async def _page(
    st: PortalState,
    who: PartnerPerson,
    tenant: Tenant,
    *,
    notice: str = "",
    error: str = "",
    new_token: str = "",
    status: int = 200,
) -> Response:
    values = await setup_context(
        st.services,
        tenant,
        new_token=new_token,
        base=_base(tenant.id),
        settings_url=f"/partner/tenants/{tenant.id}",
    )
    ctx = page_context(who, **values, tenant=tenant, may_change=True, notice=notice, error=error)
    return st.pages.render("partner/setup.html", ctx, status=status, headers=NO_STORE)


async def setup_page(request: Request) -> Response:
    st = portal(request)
    who = await signed_in(st, request)
    if isinstance(who, Response):
        return who
    tenant = await _tenant(st, who, request.path_params["tenant_id"])
    notice = NOTICES.get(request.query_params.get("done", ""), "")
    return await _page(st, who, tenant, notice=notice)


async def start_check(request: Request) -> Response:
    tenant_id = request.path_params["tenant_id"]
    async with partner_post(request, admins_only=False) as (st, s, who, _form):
        tenant = await _tenant(st, who, tenant_id)
        await open_check(s, tenant.id, who.actor)
        await s.commit()
    return RedirectResponse(f"{_base(tenant_id)}?done=check#check", status_code=303)


async def check_state(request: Request) -> Response:
    st = portal(request)
    who = await signed_in(st, request)
    if isinstance(who, Response):
        return who
    tenant = await _tenant(st, who, request.path_params["tenant_id"])
    async with st.services.db.session() as s:
        check = await read_check(s, tenant.id)
    wanted = request.query_params.get("format", "")
    if wanted == "json" or (not wanted and wants_json(request)):
        body = check.as_json() if check else {"state": "none", "steps": []}
        return JSONResponse(body, headers=NO_STORE)
    ctx = page_context(who, check=check, may_change=True, tenant=tenant)
    ctx["setup_base"] = _base(tenant.id)
    name = "setup/_check.html" if wanted == "fragment" else "partner/setup_check.html"
    return st.pages.render(name, ctx, headers=NO_STORE)


async def new_token(request: Request) -> Response:
    tenant_id = request.path_params["tenant_id"]
    async with partner_post(request, admins_only=False) as (st, s, who, _form):
        tenant = await _tenant(st, who, tenant_id)
        token = await issue_token(s, tenant.id, who.actor)
        await s.commit()
    return await _page(st, who, tenant, new_token=token)


async def revoke(request: Request) -> Response:
    tenant_id = request.path_params["tenant_id"]
    async with partner_post(request, admins_only=False) as (st, s, who, _form):
        tenant = await _tenant(st, who, tenant_id)
        try:
            await revoke_token(s, tenant.id, request.path_params["token_id"], who.actor)
        except NotFound:
            raise HTTPException(404) from None
        except PermanentError as exc:
            return await _page(st, who, tenant, error=f"Not revoked: {exc}.", status=400)
        await s.commit()
    return RedirectResponse(f"{_base(tenant_id)}?done=revoked", status_code=303)
