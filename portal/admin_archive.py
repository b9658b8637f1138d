"""The archive in the portal (issue 5): search and export for a tenant's compliance officers
and admins (``/admin/archive``, ``/admin/archive/export``) and the JSON API
(``/api/v1/archive/search``, ``/api/v1/archive/export``, bearer API key of role admin or
compliance).

Always scoped to the caller's tenant. Only the page's rows have their sealed summary opened;
exports are streamed (:mod:`archive.export`). Every search and export is audited with a
count of criteria and a keyed hash of the query, never its words or addresses.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from archive import export
from archive.search import DECISIONS, MAX_LIMIT, Query, QueryError, audit_search, search
from branding.notifications import format_time
from portal.admin_auth import ADMIN_ROLES, Admin, current_admin
from portal.api import _error, _tenant
from portal.pages import branding_of
from portal.state import PortalState, portal

PAGE_SIZE = 50
DOWNLOAD_CSP = "default-src 'none'; sandbox"
MEDIA = {"mbox": "application/mbox", "zip": "application/zip"}
CRITERIA = ("from", "to", "after", "before", "subject", "has_attachment", "decision")


def _int(value: str | None, default: int, low: int, high: int) -> int:
    if value in (None, ""):
        return default
    try:
        n = int(value)
    except ValueError:
        raise QueryError(f"not a number: {value[:20]!r}") from None
    if not low <= n <= high:
        raise QueryError(f"must be between {low} and {high}: {n}")
    return n


def _criteria(request: Request) -> dict[str, str]:
    return {k: request.query_params[k] for k in CRITERIA if request.query_params.get(k)}


def _download(
    services: Any, tenant_id: str, query: Query, fmt: str, stats: export.ExportStats
) -> StreamingResponse:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    name = f"archive-{stamp}.{'mbox' if fmt == 'mbox' else 'zip'}"
    stream: AsyncIterator[bytes] = export.exporter(fmt)(services, tenant_id, query, stats)
    headers = {
        "Content-Disposition": f'attachment; filename="{name}"',
        "Content-Security-Policy": DOWNLOAD_CSP,
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    }
    return StreamingResponse(stream, media_type=MEDIA[fmt], headers=headers)


# --- pages ------------------------------------------------------------------------------


async def _officer(st: PortalState, request: Request) -> Admin | Response:
    async with st.services.db.session() as s:
        admin = await current_admin(s, request)
    if admin is None:
        return RedirectResponse("/admin/login", status_code=303)
    if admin.user.role not in ADMIN_ROLES:
        raise HTTPException(404)
    return admin


def _context(admin: Admin, **extra: Any) -> dict[str, Any]:
    return {
        **branding_of(admin.tenant),
        "admin_email": admin.user.email,
        "admin_role": admin.user.role,
        "csrf_token": admin.session.csrf_token,
        "fmt_time": format_time,
        **extra,
    }


async def archive_page(request: Request) -> Response:
    st = portal(request)
    admin = await _officer(st, request)
    if isinstance(admin, Response):
        return admin
    criteria = _criteria(request)
    ctx: dict[str, Any] = {
        "criteria": criteria,
        "decisions": DECISIONS,
        "result": None,
        "error": "",
        "searched": bool(criteria) or "page" in request.query_params,
    }
    status = 200
    if ctx["searched"]:
        try:
            query = Query.from_params(request.query_params)
            page = _int(request.query_params.get("page"), 1, 1, 1_000_000)
            async with st.services.db.session() as s:
                result = await search(st.services, s, admin.tenant.id, query, page, PAGE_SIZE)
                await audit_search(
                    st.services, s, admin.tenant.id, admin.actor, query, "archive.search",
                    result.total, page=page, via="portal",
                )  # fmt: skip
                await s.commit()
            ctx["result"] = result

            def link(**change: Any) -> str:
                return "?" + urllib.parse.urlencode({**criteria, **change})

            ctx["link"] = link
            ctx["export_query"] = urllib.parse.urlencode(criteria)
        except QueryError as exc:
            ctx["error"], status = str(exc), 400
    return st.pages.render("portal/admin_archive.html", _context(admin, **ctx), status=status)


async def archive_export(request: Request) -> Response:
    st = portal(request)
    admin = await _officer(st, request)
    if isinstance(admin, Response):
        return admin
    fmt = request.query_params.get("format", "zip")
    try:
        if fmt not in export.FORMATS:
            raise QueryError("format must be mbox or zip")
        query = Query.from_params(request.query_params)
    except QueryError as exc:
        ctx: dict[str, Any] = {"criteria": _criteria(request), "decisions": DECISIONS}
        ctx["result"] = None
        ctx.update(error=str(exc), searched=True)
        return st.pages.render("portal/admin_archive.html", _context(admin, **ctx), status=400)
    return await _start_export(st, admin.tenant.id, admin.actor, query, fmt, "portal")


async def _start_export(
    st: PortalState, tenant_id: str, actor: str, query: Query, fmt: str, via: str
) -> Response:
    total = await export.count(st.services, tenant_id, query)
    async with st.services.db.session() as s:
        await audit_search(
            st.services, s, tenant_id, actor, query, "archive.export", total, format=fmt, via=via
        )
        await s.commit()
    return _download(st.services, tenant_id, query, fmt, export.ExportStats())


# --- the JSON API -----------------------------------------------------------------------


async def _api_caller(request: Request) -> tuple[str, str] | Response:
    found = await _tenant(request)
    if isinstance(found, Response):
        return found
    tenant, role = found
    if role not in ADMIN_ROLES:
        return _error(403, "this API key may not search the archive")
    return tenant.id, f"api-key:{role}"


async def api_search(request: Request) -> Response:
    caller = await _api_caller(request)
    if isinstance(caller, Response):
        return caller
    tenant_id, actor = caller
    st = portal(request)
    try:
        query = Query.from_params(request.query_params)
        page = _int(request.query_params.get("page"), 1, 1, 1_000_000)
        limit = _int(request.query_params.get("limit"), PAGE_SIZE, 1, MAX_LIMIT)
    except QueryError as exc:
        return _error(400, str(exc))
    async with st.services.db.session() as s:
        result = await search(st.services, s, tenant_id, query, page, limit)
        await audit_search(
            st.services, s, tenant_id, actor, query, "archive.search", result.total,
            page=page, via="api",
        )  # fmt: skip
        await s.commit()
    return JSONResponse(result.as_json(), headers={"Cache-Control": "no-store"})


async def api_export(request: Request) -> Response:
    caller = await _api_caller(request)
    if isinstance(caller, Response):
        return caller
    tenant_id, actor = caller
    fmt = request.query_params.get("format", "zip")
    try:
        if fmt not in export.FORMATS:
            raise QueryError("format must be mbox or zip")
        query = Query.from_params(request.query_params)
    except QueryError as exc:
        return _error(400, str(exc))
    return await _start_export(portal(request), tenant_id, actor, query, fmt, "api")


_CRITERIA_PARAMS: list[dict[str, Any]] = [
    {"name": "from", "in": "query", "schema": {"type": "string"},
     "description": "sender address, or a domain"},
    {"name": "to", "in": "query", "schema": {"type": "string"},
     "description": "recipient address (To, Cc, Bcc), or a domain"},
    {"name": "after", "in": "query", "schema": {"type": "string", "format": "date"}},
    {"name": "before", "in": "query", "schema": {"type": "string", "format": "date"}},
    {"name": "subject", "in": "query", "schema": {"type": "string"},
     "description": "subject words, all must match"},
    {"name": "has_attachment", "in": "query", "schema": {"type": "boolean"}},
    {"name": "decision", "in": "query", "schema": {"type": "string", "enum": list(DECISIONS)}},
]  # fmt: skip

ARCHIVE_PATHS: dict[str, Any] = {
    "/api/v1/archive/search": {
        "get": {
            "summary": "Search the tenant's archive (newest first, paged); role admin or "
            "compliance",
            "parameters": [
                *_CRITERIA_PARAMS,
                {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                },
            ],
            "responses": {
                "200": {"description": "total, page, limit, pages and the page's items"},
                "400": {"description": "a parameter that does not make sense"},
                "401": {"description": "missing or invalid API key"},
                "403": {"description": "the key's role may not search the archive"},
            },
        }
    },
    "/api/v1/archive/export": {
        "get": {
            "summary": "Export the matching messages (all of the tenant's with no criteria) "
            "as an mbox or a zip of .eml files with manifest.json and manifest.csv; streamed",
            "parameters": [
                *_CRITERIA_PARAMS,
                {
                    "name": "format",
                    "in": "query",
                    "schema": {"type": "string", "enum": list(export.FORMATS)},
                },
            ],
            "responses": {
                "200": {"description": "the export, as a download"},
                "400": {"description": "a parameter that does not make sense"},
                "401": {"description": "missing or invalid API key"},
                "403": {"description": "the key's role may not export the archive"},
            },
        }
    },
}

ROUTES: list[BaseRoute] = [
    Route("/admin/archive", archive_page, methods=["GET"]),
    Route("/admin/archive/export", archive_export, methods=["GET"]),
    Route("/api/v1/archive/search", api_search, methods=["GET"]),
    Route("/api/v1/archive/export", api_export, methods=["GET"]),
]
