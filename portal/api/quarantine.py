"""The quarantine in the JSON API: ``GET /api/v1/quarantine``,
``POST /api/v1/quarantine/{id}/release`` and ``.../reject`` (bearer API key of the tenant;
another tenant's id answers the same 404 as an unknown one)."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core import quarantine
from core.errors import NotFound
from portal.admin.notices import compose_reject_notice
from portal.api.common import error, officer_of_key
from portal.state import portal

MAX_BODY = 4096


def _held_json(h: Any, m: Any | None = None) -> dict[str, Any]:
    out = {
        "id": h.id,
        "message_id": h.message_id,
        "recipients": quarantine.recipients_of(h),
        "rule": h.rule,
        "reason": h.reason,
        "state": h.state,
        "created_at": h.created_at,
        "decided_at": h.decided_at,
        "decided_by": h.decided_by,
    }
    if m is not None:
        out["mail_from"] = m.mail_from
    return out


async def list_held(request: Request) -> Response:
    caller = await officer_of_key(request, "decide the quarantine")
    if isinstance(caller, Response):
        return caller
    tenant_id, _ = caller
    state = request.query_params.get("state", "held")
    if state not in ("held", "released", "rejected", "all"):
        return error(400, "state must be held, released, rejected or all")
    async with portal(request).services.db.session() as s:
        rows = await quarantine.list_held(s, tenant_id, None if state == "all" else state)
    body = {"items": [_held_json(h, m) for h, m in rows]}
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


async def _decide(request: Request, action: str) -> Response:
    caller = await officer_of_key(request, "decide the quarantine")
    if isinstance(caller, Response):
        return caller
    tenant_id, actor = caller
    note = ""
    if action == "reject":
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return error(413, "request body too large")
        if raw.strip():
            try:
                data = json.loads(raw)
            except ValueError:
                return error(400, "the body must be JSON")
            note = str(data.get("note", "")) if isinstance(data, dict) else ""
    st = portal(request)
    held_id = request.path_params["held_id"]
    async with st.services.db.session() as s:
        try:
            if action == "release":
                held = await quarantine.release(s, held_id, tenant_id, actor)
            else:
                held = await quarantine.reject(
                    st.services, s, held_id, tenant_id, actor, note=note,
                    compose_notice=compose_reject_notice,
                )  # fmt: skip
        except NotFound:
            return error(404, "no such held message")
        except quarantine.AlreadyDecided:
            return error(409, "this message was already decided")
    return JSONResponse(_held_json(held), headers={"Cache-Control": "no-store"})


async def release(request: Request) -> Response:
    return await _decide(request, "release")


async def reject(request: Request) -> Response:
    return await _decide(request, "reject")
