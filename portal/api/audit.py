"""``GET /api/v1/audit``: the tenant's audit log for admin and compliance keys, newest first,
paged, filtered by action, actor and time — the same events ``/admin/audit`` shows as
sentences, here as data (details as the JSON object they were recorded with)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core.models import AuditEvent
from portal.api.common import caller_of_key, error, limit_of
from portal.api.messages import NO_STORE
from portal.api.spec import PAGING, TENANT_KEY, errors, ok, query_param
from portal.state import portal


def event_json(e: AuditEvent) -> dict[str, Any]:
    try:
        detail = json.loads(e.detail or "{}")
    except ValueError:
        detail = {}
    return {
        "id": e.id,
        "at": e.at,
        "actor": e.actor,
        "action": e.action,
        "subject_id": e.subject_id,
        "detail": detail if isinstance(detail, dict) else {},
    }


def _number(raw: str, name: str) -> float | None | Response:
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        return error(422, f"{name} must be a Unix time")
    if not 0 <= value < 1e11:
        return error(422, f"{name} must be a Unix time")
    return value


async def list_events(request: Request) -> Response:
    """``GET /api/v1/audit?action=&actor=&since=&limit=&before=``."""
    caller = await caller_of_key(request, ("admin", "compliance"), "read the audit log")
    if isinstance(caller, Response):
        return caller
    limit = limit_of(request)
    if isinstance(limit, Response):
        return limit
    q = request.query_params
    since = _number(q.get("since", ""), "since")
    if isinstance(since, Response):
        return since
    before = q.get("before", "")
    if before and not (before.isdigit() and len(before) < 19):
        return error(422, "before must be the next_before of an earlier page")
    stmt = select(AuditEvent).where(AuditEvent.tenant_id == caller.tenant.id)
    if q.get("action"):
        stmt = stmt.where(AuditEvent.action == q["action"][:64])
    if q.get("actor"):
        stmt = stmt.where(AuditEvent.actor == q["actor"][:320])
    if since is not None:
        stmt = stmt.where(AuditEvent.at >= since)
    if before:
        stmt = stmt.where(AuditEvent.id < int(before))
    stmt = stmt.order_by(AuditEvent.id.desc()).limit(limit + 1)
    async with portal(request).services.db.session() as s:
        rows = list((await s.execute(stmt)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    body = {
        "events": [event_json(e) for e in rows],
        "next_before": str(rows[-1].id) if more and rows else None,
    }
    return JSONResponse(body, headers=NO_STORE)


_EVENT = {
    "type": "object",
    "required": ["id", "at", "actor", "action", "subject_id", "detail"],
    "properties": {
        "id": {"type": "integer"},
        "at": {"type": "number", "description": "Unix time"},
        "actor": {"type": "string"},
        "action": {"type": "string", "description": "e.g. user.add, policy.set"},
        "subject_id": {"type": "string"},
        "detail": {"type": "object"},
    },
}

PATHS: dict[str, Any] = {
    "/api/v1/audit": {
        "get": {
            "summary": "The tenant's audit log, newest first (admin and compliance keys)",
            "security": TENANT_KEY,
            "parameters": [
                query_param("action", {"type": "string", "maxLength": 64}, "only this action"),
                query_param("actor", {"type": "string", "maxLength": 320}, "only this actor"),
                query_param("since", {"type": "number", "minimum": 0}, "from this Unix time"),
                PAGING[0],
                query_param(
                    "before", {"type": "string", "pattern": "^[0-9]{1,18}$"}, "next_before"
                ),
            ],
            "responses": {
                "200": ok(
                    "a page of events; next_before is null on the last page",
                    {
                        "type": "object",
                        "required": ["events", "next_before"],
                        "properties": {
                            "events": {"type": "array", "items": _EVENT},
                            "next_before": {"type": ["string", "null"]},
                        },
                    },
                ),
                **errors("403", "422"),
            },
        }
    },
}
