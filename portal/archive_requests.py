"""The archive as the admin pages and the JSON API both ask for it: search criteria read from
a request, a legal hold's search query, and an audited export streamed as a download
(:mod:`archive.export`)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from archive import export
from archive.search import Query, QueryError, audit_search
from portal.security import DOWNLOAD_CSP
from portal.state import PortalState

PAGE_SIZE = 50
MEDIA = {"mbox": "application/mbox", "zip": "application/zip"}
CRITERIA = ("from", "to", "after", "before", "subject", "has_attachment", "decision")
SEARCH_FIELDS = ("from", "to", "subject", "after", "before", "has_attachment", "decision")


def bounded_int(value: str | None, default: int, low: int, high: int) -> int:
    if value in (None, ""):
        return default
    try:
        n = int(value)
    except ValueError:
        raise QueryError(f"not a number: {value[:20]!r}") from None
    if not low <= n <= high:
        raise QueryError(f"must be between {low} and {high}: {n}")
    return n


def criteria_of(request: Request) -> dict[str, str]:
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


async def start_export(
    st: PortalState, tenant_id: str, actor: str, query: Query, fmt: str, via: str
) -> Response:
    total = await export.count(st.services, tenant_id, query)
    async with st.services.db.session() as s:
        await audit_search(
            st.services, s, tenant_id, actor, query, "archive.export", total, format=fmt, via=via
        )
        await s.commit()
    return _download(st.services, tenant_id, query, fmt, export.ExportStats())


def hold_query(values: dict[str, str]) -> Query:
    return Query.from_params({k: values.get(k, "") for k in SEARCH_FIELDS})
