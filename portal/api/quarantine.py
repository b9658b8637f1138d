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
from portal.api.common import bounded_body, error, officer_of_key
from portal.api.spec import TENANT_KEY, errors, json_body, ok, path_param, query_param
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
        raw = await bounded_body(request, MAX_BODY)
        if raw is None:
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


_HELD = {
    "type": "object",
    "required": ["id", "message_id", "state"],
    "properties": {
        "id": {"type": "string"},
        "message_id": {"type": "string"},
        "recipients": {"type": "array", "items": {"type": "string"}},
        "rule": {"type": "string"},
        "reason": {"type": "string"},
        "state": {"type": "string", "enum": ["held", "released", "rejected"]},
        "created_at": {"type": "number"},
        "decided_at": {"type": ["number", "null"]},
        "decided_by": {"type": ["string", "null"]},
        "mail_from": {"type": "string"},
    },
}
_DECIDED = ("409", "the message was already decided")

PATHS: dict[str, Any] = {
    "/api/v1/quarantine": {
        "get": {
            "summary": "The tenant's held messages (admin and compliance keys)",
            "security": TENANT_KEY,
            "parameters": [
                query_param(
                    "state",
                    {"type": "string", "enum": ["held", "released", "rejected", "all"]},
                    "held (the default), released, rejected or all",
                )
            ],
            "responses": {
                "200": ok(
                    "the held messages",
                    {
                        "type": "object",
                        "required": ["items"],
                        "properties": {"items": {"type": "array", "items": _HELD}},
                    },
                ),
                **errors(("400", "state is not one of the four"), "403"),
            },
        }
    },
    "/api/v1/quarantine/{held_id}/release": {
        "post": {
            "summary": "Release a held message: it goes on its way (admin and compliance keys)",
            "security": TENANT_KEY,
            "parameters": [path_param("held_id")],
            "responses": {
                "200": ok("the decided message", _HELD),
                **errors("403", "404", _DECIDED),
            },
        }
    },
    "/api/v1/quarantine/{held_id}/reject": {
        "post": {
            "summary": "Reject a held message; the sender is told, with the note if given",
            "security": TENANT_KEY,
            "parameters": [path_param("held_id")],
            "requestBody": json_body(
                {"type": "object", "properties": {"note": {"type": "string", "maxLength": 2000}}},
                required=False,
            ),
            "responses": {
                "200": ok("the decided message", _HELD),
                **errors("400", "403", "404", _DECIDED, "413"),
            },
        }
    },
}
