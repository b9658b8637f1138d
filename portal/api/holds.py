"""``/api/v1/archive/holds``: legal holds for API keys of role admin or compliance (issue 5);
the page is :mod:`portal.admin.retention`. Everything is audited (:mod:`archive.holds`); a
search hold keeps its criteria only as a keyed hash."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from archive import holds
from archive.search import QueryError
from core.errors import NotFound, PermanentError
from portal.api.common import bounded_body, error, officer_of_key
from portal.api.spec import TENANT_KEY, errors, json_body, ok, path_param, query_param
from portal.archive_requests import SEARCH_FIELDS, hold_query
from portal.state import portal

MAX_BODY = 16 * 1024


async def api_list(request: Request) -> Response:
    caller = await officer_of_key(request, "search the archive")
    if isinstance(caller, Response):
        return caller
    tenant_id, _actor = caller
    everything = request.query_params.get("all", "") in ("1", "true", "yes")
    async with portal(request).services.db.session() as s:
        rows = await holds.list_holds(s, tenant_id, include_released=everything)
    return JSONResponse({"holds": [holds.as_json(h) for h in rows]})


async def api_place(request: Request) -> Response:
    caller = await officer_of_key(request, "search the archive")
    if isinstance(caller, Response):
        return caller
    tenant_id, actor = caller
    body = await bounded_body(request, MAX_BODY)
    if body is None:
        return error(413, "request body too large")
    try:
        data = json.loads(body or b"{}")
        if not isinstance(data, dict):
            raise ValueError
    except ValueError:
        return error(400, "the body must be a JSON object")
    criteria = data.get("criteria") or {}
    if not isinstance(criteria, dict) or not all(
        isinstance(v, str | bool) for v in criteria.values()
    ):
        return error(400, "criteria must be an object of strings")
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
                query = hold_query(values)
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
            return error(404, str(exc))
        except (PermanentError, QueryError) as exc:
            return error(400, str(exc))
        await s.commit()
        return JSONResponse(holds.as_json(hold), status_code=201)


async def api_release(request: Request) -> Response:
    caller = await officer_of_key(request, "search the archive")
    if isinstance(caller, Response):
        return caller
    tenant_id, actor = caller
    async with portal(request).services.db.session() as s:
        try:
            hold = await holds.release(s, tenant_id, request.path_params["hold_id"], actor)
        except NotFound as exc:
            return error(404, str(exc))
        except PermanentError as exc:
            return error(409, str(exc))
        await s.commit()
        return JSONResponse(holds.as_json(hold))


_HOLD = {
    "type": "object",
    "required": ["id", "kind", "active"],
    "properties": {
        "id": {"type": "string"},
        "tenant_id": {"type": "string"},
        "kind": {"type": "string", "enum": ["tenant", "search", "message"]},
        "name": {"type": "string"},
        "reason": {"type": "string"},
        "items": {"type": ["integer", "null"]},
        "criteria_hash": {"type": ["string", "null"]},
        "placed_by": {"type": "string"},
        "placed_at": {"type": "number"},
        "released_by": {"type": ["string", "null"]},
        "released_at": {"type": ["number", "null"]},
        "active": {"type": "boolean"},
    },
}
_PLACE = {
    "type": "object",
    "required": ["kind"],
    "properties": {
        "kind": {"type": "string", "enum": ["tenant", "search", "message"]},
        "name": {"type": "string"},
        "reason": {"type": "string"},
        "placed_by": {"type": "string"},
        "message": {"type": "string", "description": "kind message: its entry or queue id"},
        "criteria": {
            "type": "object",
            "description": "kind search: from, to, subject, after, before, has_attachment, "
            "decision",
            "additionalProperties": {"type": ["string", "boolean"]},
        },
    },
}

PATHS: dict[str, Any] = {
    "/api/v1/archive/holds": {
        "get": {
            "summary": "The tenant's legal holds in force (all=1: released ones too); role "
            "admin or compliance",
            "security": TENANT_KEY,
            "parameters": [
                query_param("all", {"type": "string", "enum": ["1", "true", "yes", "0"]})
            ],
            "responses": {
                "200": ok(
                    "the holds",
                    {
                        "type": "object",
                        "required": ["holds"],
                        "properties": {"holds": {"type": "array", "items": _HOLD}},
                    },
                ),
                **errors("403"),
            },
        },
        "post": {
            "summary": "Place a legal hold: kind tenant, search (criteria: from, to, subject, "
            "after, before, has_attachment, decision) or message (message: entry or queue id)",
            "security": TENANT_KEY,
            "requestBody": json_body(_PLACE),
            "responses": {
                "201": ok("the hold", _HOLD),
                **errors(
                    ("400", "a field that does not make sense"),
                    "403",
                    ("404", "no such message"),
                    "413",
                ),
            },
        },
    },
    "/api/v1/archive/holds/{hold_id}/release": {
        "post": {
            "summary": "Release a legal hold",
            "security": TENANT_KEY,
            "parameters": [path_param("hold_id")],
            "responses": {
                "200": ok("the released hold", _HOLD),
                **errors(
                    "403", ("404", "no such hold in this tenant"), ("409", "already released")
                ),
            },
        }
    },
}
