"""Retention and legal holds in the portal (issue 5): ``/admin/retention`` for a tenant's
compliance officers and admins (the tenant's archive and portal retention, its legal holds:
place by tenant, search or message, release), and the JSON API ``/api/v1/archive/holds``
(bearer API key of role admin or compliance).

Always scoped to the caller's tenant. Retention changes are for admins only; holds for
admins and compliance officers. Everything is audited (:mod:`archive.holds`,
:mod:`archive.retention`); a search hold keeps its criteria only as a keyed hash.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from archive import holds, retention
from archive.search import DECISIONS, Query, QueryError
from core.errors import NotFound, PermanentError
from core.models import Tenant
from portal.admin_archive import _api_caller, _context
from portal.admin_auth import ADMIN_ROLES, Admin, checked_form, current_admin
from portal.api import _error
from portal.forms import field
from portal.security import check_session_token, same_origin_request
from portal.state import PortalState, portal

SEARCH_FIELDS = ("from", "to", "subject", "after", "before", "has_attachment", "decision")
MAX_BODY = 16 * 1024
NOTICES = {
    "placed": "Legal hold placed.",
    "released": "Legal hold released.",
    "saved": "Retention saved.",
}


async def _officer(st: PortalState, request: Request) -> Admin | Response:
    async with st.services.db.session() as s:
        admin = await current_admin(s, request)
    if admin is None:
        return RedirectResponse("/admin/login", status_code=303)
    if admin.user.role not in ADMIN_ROLES:
        raise HTTPException(404)
    return admin


async def _page(
    st: PortalState, admin: Admin, *, error: str = "", notice: str = "", status: int = 200
) -> Response:
    async with st.services.db.session() as s:
        tenant = await s.get(Tenant, admin.tenant.id)
        rows = await holds.list_holds(s, admin.tenant.id, include_released=True)
    settings = st.services.settings
    ctx = _context(
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
    return st.pages.render("portal/admin_retention.html", ctx, status=status)


async def retention_page(request: Request) -> Response:
    st = portal(request)
    admin = await _officer(st, request)
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


def _query(values: dict[str, str]) -> Query:
    return Query.from_params({k: values.get(k, "") for k in SEARCH_FIELDS})


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
            query = _query(values) if kind == "search" else None
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


# --- the JSON API -----------------------------------------------------------------------


async def api_list(request: Request) -> Response:
    caller = await _api_caller(request)
    if isinstance(caller, Response):
        return caller
    tenant_id, _actor = caller
    everything = request.query_params.get("all", "") in ("1", "true", "yes")
    async with portal(request).services.db.session() as s:
        rows = await holds.list_holds(s, tenant_id, include_released=everything)
    return JSONResponse({"holds": [holds.as_json(h) for h in rows]})


async def api_place(request: Request) -> Response:
    caller = await _api_caller(request)
    if isinstance(caller, Response):
        return caller
    tenant_id, actor = caller
    body = await request.body()
    if len(body) > MAX_BODY:
        return _error(413, "request body too large")
    try:
        data = json.loads(body or b"{}")
        if not isinstance(data, dict):
            raise ValueError
    except ValueError:
        return _error(400, "the body must be a JSON object")
    criteria = data.get("criteria") or {}
    if not isinstance(criteria, dict) or not all(
        isinstance(v, str | bool) for v in criteria.values()
    ):
        return _error(400, "criteria must be an object of strings")
    kind = str(data.get("kind", ""))
    st = portal(request)
    async with st.services.db.session() as s:
        try:
            query = None
            if kind == "search":
                values = {k: str(criteria.get(k, "")) for k in SEARCH_FIELDS}
                if criteria.get("has_attachment") is True:
                    values["has_attachment"] = "1"
                elif criteria.get("has_attachment") is False:
                    values["has_attachment"] = ""
                query = _query(values)
            hold = await holds.place(
                st.services,
                s,
                tenant_id,
                str(data.get("placed_by") or actor)[:320],
                kind,
                str(data.get("name", "")),
                str(data.get("reason", "")),
                query=query,
                message=str(data.get("message", "")),
            )
        except NotFound as exc:
            return _error(404, str(exc))
        except (PermanentError, QueryError) as exc:
            return _error(400, str(exc))
        await s.commit()
        return JSONResponse(holds.as_json(hold), status_code=201)


async def api_release(request: Request) -> Response:
    caller = await _api_caller(request)
    if isinstance(caller, Response):
        return caller
    tenant_id, actor = caller
    async with portal(request).services.db.session() as s:
        try:
            hold = await holds.release(s, tenant_id, request.path_params["hold_id"], actor)
        except NotFound as exc:
            return _error(404, str(exc))
        except PermanentError as exc:
            return _error(409, str(exc))
        await s.commit()
        return JSONResponse(holds.as_json(hold))


HOLD_PATHS: dict[str, Any] = {
    "/api/v1/archive/holds": {
        "get": {
            "summary": "The tenant's legal holds in force (all=1: released ones too); role "
            "admin or compliance",
            "responses": {"200": {"description": "holds"}, "401": {}, "403": {}},
        },
        "post": {
            "summary": "Place a legal hold: kind tenant, search (criteria: from, to, subject, "
            "after, before, has_attachment, decision) or message (message: entry or queue id)",
            "responses": {
                "201": {"description": "the hold"},
                "400": {"description": "a field that does not make sense"},
                "404": {"description": "no such message"},
            },
        },
    },
    "/api/v1/archive/holds/{hold_id}/release": {
        "post": {
            "summary": "Release a legal hold",
            "responses": {
                "200": {"description": "the released hold"},
                "404": {"description": "no such hold in this tenant"},
                "409": {"description": "already released"},
            },
        }
    },
}

ROUTES: list[BaseRoute] = [
    Route("/admin/retention", retention_page, methods=["GET"]),
    Route("/admin/retention", save_retention, methods=["POST"]),
    Route("/admin/holds", place_hold, methods=["POST"]),
    Route("/admin/holds/{hold_id}/release", release_hold, methods=["POST"]),
    Route("/api/v1/archive/holds", api_list, methods=["GET"]),
    Route("/api/v1/archive/holds", api_place, methods=["POST"]),
    Route("/api/v1/archive/holds/{hold_id}/release", api_release, methods=["POST"]),
]
