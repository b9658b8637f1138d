"""``/admin/archive`` and ``/admin/archive/export``: search and export of the archive for a
tenant's compliance officers and admins (issue 5); the JSON API is :mod:`portal.api.archive`.

Always scoped to the caller's tenant. Only the page's rows have their sealed summary opened;
exports are streamed (:mod:`archive.export`). Every search and export is audited with a
count of criteria and a keyed hash of the query, never its words or addresses.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from archive import export
from archive.search import DECISIONS, Query, QueryError, audit_search, search
from portal.admin.context import officer, page_context
from portal.archive_requests import PAGE_SIZE, bounded_int, criteria_of, start_export
from portal.state import portal


async def archive_page(request: Request) -> Response:
    st = portal(request)
    admin = await officer(st, request)
    if isinstance(admin, Response):
        return admin
    criteria = criteria_of(request)
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
            page = bounded_int(request.query_params.get("page"), 1, 1, 1_000_000)
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
    return st.pages.render("admin/archive.html", page_context(admin, **ctx), status=status)


async def archive_export(request: Request) -> Response:
    st = portal(request)
    admin = await officer(st, request)
    if isinstance(admin, Response):
        return admin
    fmt = request.query_params.get("format", "zip")
    try:
        if fmt not in export.FORMATS:
            raise QueryError("format must be mbox or zip")
        query = Query.from_params(request.query_params)
    except QueryError as exc:
        ctx: dict[str, Any] = {"criteria": criteria_of(request), "decisions": DECISIONS}
        ctx["result"] = None
        ctx.update(error=str(exc), searched=True)
        return st.pages.render("admin/archive.html", page_context(admin, **ctx), status=400)
    return await start_export(st, admin.tenant.id, admin.actor, query, fmt, "portal")
