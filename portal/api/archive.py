"""``/api/v1/archive/search`` and ``/api/v1/archive/export`` (issue 5): the archive for API
keys of role admin or compliance; the pages are :mod:`portal.admin.archive`.

Always scoped to the caller's tenant. Only the page's rows have their sealed summary opened;
exports are streamed (:mod:`archive.export`). Every search and export is audited with a
count of criteria and a keyed hash of the query, never its words or addresses.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from archive import export
from archive.search import DECISIONS, MAX_LIMIT, Query, QueryError, audit_search, search
from portal.api.common import error, officer_of_key
from portal.api.spec import TENANT_KEY, errors, ok
from portal.archive_requests import PAGE_SIZE, bounded_int, start_export
from portal.state import portal


async def api_search(request: Request) -> Response:
    caller = await officer_of_key(request, "search the archive")
    if isinstance(caller, Response):
        return caller
    tenant_id, actor = caller
    st = portal(request)
    try:
        query = Query.from_params(request.query_params)
        page = bounded_int(request.query_params.get("page"), 1, 1, 1_000_000)
        limit = bounded_int(request.query_params.get("limit"), PAGE_SIZE, 1, MAX_LIMIT)
    except QueryError as exc:
        return error(400, str(exc))
    async with st.services.db.session() as s:
        result = await search(st.services, s, tenant_id, query, page, limit)
        await audit_search(
            st.services, s, tenant_id, actor, query, "archive.search", result.total,
            page=page, via="api",
        )  # fmt: skip
        await s.commit()
    return JSONResponse(result.as_json(), headers={"Cache-Control": "no-store"})


async def api_export(request: Request) -> Response:
    caller = await officer_of_key(request, "search the archive")
    if isinstance(caller, Response):
        return caller
    tenant_id, actor = caller
    fmt = request.query_params.get("format", "zip")
    try:
        if fmt not in export.FORMATS:
            raise QueryError("format must be mbox or zip")
        query = Query.from_params(request.query_params)
    except QueryError as exc:
        return error(400, str(exc))
    return await start_export(portal(request), tenant_id, actor, query, fmt, "api")


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

_SEARCH = {
    "type": "object",
    "required": ["total", "page", "limit", "items"],
    "properties": {
        "total": {"type": "integer"},
        "page": {"type": "integer"},
        "limit": {"type": "integer"},
        "pages": {"type": "integer"},
        "items": {"type": "array", "items": {"type": "object"}},
    },
}

PATHS: dict[str, Any] = {
    "/api/v1/archive/search": {
        "get": {
            "summary": "Search the tenant's archive (newest first, paged); role admin or "
            "compliance",
            "security": TENANT_KEY,
            "parameters": [
                *_CRITERIA_PARAMS,
                {
                    "name": "page",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
                },
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                },
            ],
            "responses": {
                "200": ok("total, page, limit, pages and the page's items", _SEARCH),
                **errors(("400", "a parameter that does not make sense"), "403"),
            },
        }
    },
    "/api/v1/archive/export": {
        "get": {
            "summary": "Export the matching messages (all of the tenant's with no criteria) "
            "as an mbox or a zip of .eml files with manifest.json and manifest.csv; streamed",
            "security": TENANT_KEY,
            "parameters": [
                *_CRITERIA_PARAMS,
                {
                    "name": "format",
                    "in": "query",
                    "schema": {"type": "string", "enum": list(export.FORMATS)},
                },
            ],
            "responses": {
                "200": {
                    "description": "the export, as a download",
                    "content": {
                        "application/zip": {"schema": {"type": "string", "format": "binary"}},
                        "application/mbox": {"schema": {"type": "string", "format": "binary"}},
                    },
                },
                **errors(("400", "a parameter that does not make sense"), "403"),
            },
        }
    },
}
