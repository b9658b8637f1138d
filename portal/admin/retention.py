"""Retention and legal holds in the portal (issue 5): ``/admin/retention`` for a tenant's
compliance officers and admins (the tenant's archive and portal retention, its legal holds:
place by tenant, search or message, release); the JSON API
``/api/v1/archive/holds`` is :mod:`portal.api.holds`.

Always scoped to the caller's tenant. Retention changes are for admins only; holds for
admins and compliance officers. Everything is audited (:mod:`archive.holds`,
:mod:`archive.retention`); a search hold keeps its criteria only as a keyed hash.
"""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from archive import holds, retention
from archive.search import DECISIONS, QueryError
from core.errors import NotFound, PermanentError
from core.models import Tenant
from portal.admin.context import officer, page_context
from portal.admin.doors import Admin, checked_form, current_admin
from portal.archive_requests import SEARCH_FIELDS, hold_query
from portal.forms import field
from portal.security import check_session_token, same_origin_request
from portal.state import PortalState, portal

NOTICES = {
    "placed": "Legal hold placed.",
    "released": "Legal hold released.",
    "saved": "Retention saved.",
}


async def _page(
    st: PortalState, admin: Admin, *, error: str = "", notice: str = "", status: int = 200
) -> Response:
    async with st.services.db.session() as s:
        tenant = await s.get(Tenant, admin.tenant.id)
        rows = await holds.list_holds(s, admin.tenant.id, include_released=True)
    settings = st.services.settings
    ctx = page_context(
        admin,
        archive_days=retention.archive_days(settings, tenant),
        portal_days=retention.portal_days(settings, tenant),
        archive_own=bool(tenant and tenant.archive_retention_days),
        portal_own=bool(tenant and tenant.portal_retention_days),
        describe=retention.describe_days,
        holds=[holds.as_json(h) for h in rows],
        decisions=DECISIONS,
        may_change=admin.user.role == "admin",
        error=error,
        notice=notice,
    )
    return st.pages.render("admin/retention.html", ctx, status=status)


async def retention_page(request: Request) -> Response:
    st = portal(request)
    admin = await officer(st, request)
    if isinstance(admin, Response):
        return admin
    notice = NOTICES.get(request.query_params.get("done", ""), "")
    return await _page(st, admin, notice=notice)


async def save_retention(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        admin = await current_admin(s, request)
        if admin is None:
            raise HTTPException(401)
        form = await checked_form(request, admin)
        if admin.user.role != "admin":
            raise HTTPException(404)
        tenant = await s.get(Tenant, admin.tenant.id)
        assert tenant is not None
        try:
            await retention.set_tenant_retention(
                s,
                tenant,
                admin.actor,
                archive=field(form, "archive_retention"),
                portal=field(form, "portal_retention"),
            )
        except PermanentError as exc:
            return await _page(st, admin, error=str(exc), status=400)
        await s.commit()
    return RedirectResponse("/admin/retention?done=saved", status_code=303)


def _reason(form: FormData) -> str:
    value = form.get("reason")
    return value[: holds.MAX_REASON + 1] if isinstance(value, str) else ""


async def _hold_form(request: Request, admin: Admin) -> FormData:
    """Like :func:`checked_form`, for the hold form's search fields (more than 8)."""
    if not same_origin_request(request, portal(request).origins):
        raise HTTPException(403)
    try:
        form = await request.form(max_files=0, max_fields=16)
    except Exception:  # noqa: BLE001 - any malformed body is the client's error
        raise HTTPException(400) from None
    if not check_session_token(admin.session.csrf_token, field(form, "csrf")):
        raise HTTPException(403)
    return form


async def place_hold(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        admin = await current_admin(s, request)
        if admin is None:
            raise HTTPException(401)
        form = await _hold_form(request, admin)
        values = {k: field(form, k) for k in SEARCH_FIELDS}
        kind = field(form, "kind")
        try:
            query = hold_query(values) if kind == "search" else None
            await holds.place(
                st.services,
                s,
                admin.tenant.id,
                admin.actor,
                kind,
                field(form, "name"),
                _reason(form),
                query=query,
                message=field(form, "message"),
            )
        except (PermanentError, NotFound, QueryError) as exc:
            return await _page(st, admin, error=str(exc), status=400)
        await s.commit()
    return RedirectResponse("/admin/retention?done=placed", status_code=303)


async def release_hold(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        admin = await current_admin(s, request)
        if admin is None:
            raise HTTPException(401)
        await checked_form(request, admin)
        try:
            await holds.release(s, admin.tenant.id, request.path_params["hold_id"], admin.actor)
        except NotFound:
            raise HTTPException(404) from None
        except PermanentError as exc:
            return await _page(st, admin, error=str(exc), status=400)
        await s.commit()
    return RedirectResponse("/admin/retention?done=released", status_code=303)
