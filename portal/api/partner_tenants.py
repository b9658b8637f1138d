"""``/api/v1/tenants``: a partner's tenants for its own programs (a PSA, a provisioning
script), with a bearer key of scope ``partner`` (``smp_...``, made at ``/partner/api-keys``):
list, create (the credentials are in the answer, once), read, convert the plan or move a
trial's last day, suspend, resume, terminate. The same operations as the console's pages
(:mod:`portal.partner.operations`), audited in each tenant's log as ``partner-key:<name>``.
A tenant's own key gets 403; another partner's tenant is 404."""

from __future__ import annotations

import datetime
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core.accounts.partner_tenants import partner_tenant, summaries
from core.accounts.partner_users import authenticate_partner_key
from core.accounts.trials import parse_end_date
from core.errors import NotFound, PermanentError
from core.models import Partner
from portal.api.common import bounded_body, error
from portal.partner.operations import NewTenant, change_standing, convert, create_for_partner
from portal.state import portal

MAX_BODY = 8192
_ERR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}


async def _partner(request: Request) -> tuple[Partner, str] | Response:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return error(401, "missing bearer API key", {"WWW-Authenticate": "Bearer"})
    async with portal(request).services.db.session() as s:
        found = await authenticate_partner_key(s, key)
    if found is None:
        if key.strip().startswith("smk_"):
            return error(403, "a tenant's API key cannot manage tenants; use a partner key")
        return error(401, "invalid API key", {"WWW-Authenticate": "Bearer"})
    partner, row = found
    return partner, f"partner-key:{row.label or row.prefix}"


async def _body(request: Request) -> dict[str, Any] | Response:
    raw = await bounded_body(request, MAX_BODY)
    if raw is None:
        return error(413, "the request body is too large")
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        return error(400, "the request body is not JSON")
    if not isinstance(data, dict):
        return error(400, "the request body must be a JSON object")
    return data


def _date(value: Any) -> datetime.date | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise PermanentError("trial_ends_on must be a date, YYYY-MM-DD")
    return parse_end_date(value)


def _strings(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PermanentError(f"{name} must be a list of strings")
    return value


async def list_tenants(request: Request) -> Response:
    who = await _partner(request)
    if isinstance(who, Response):
        return who
    async with portal(request).services.db.session() as s:
        rows = await summaries(s, who[0].id)
    return JSONResponse({"tenants": [r.as_json() for r in rows]})


async def create(request: Request) -> Response:
    who = await _partner(request)
    if isinstance(who, Response):
        return who
    data = await _body(request)
    if isinstance(data, Response):
        return data
    partner, actor = who
    st = portal(request)
    async with st.services.db.session() as s:
        try:
            for key in ("name", "plan", "admin_email"):
                if not isinstance(data.get(key, ""), str):
                    raise PermanentError(f"{key} must be a string")
            new = NewTenant(
                name=str(data.get("name", "")).strip(),
                domains=_strings(data.get("domains"), "domains"),
                plan=str(data.get("plan", "paid")),
                trial_ends_on=_date(data.get("trial_ends_on")),
                networks=_strings(data.get("networks"), "networks"),
                admin_email=str(data.get("admin_email", "")).strip(),
            )
            creds, tenant, _domains = await create_for_partner(
                s, st.services.keyring, partner, new, actor
            )
        except PermanentError as exc:
            return error(422, str(exc))
        await s.commit()
        row = (await summaries(s, partner.id, only=tenant.id))[0]
    body = {
        **row.as_json(),
        "credentials": {
            "smtp_username": creds.smtp_username,
            "smtp_password": creds.smtp_password,
            "connector_token": creds.connector_token,
            "api_key": creds.api_key,
        },
    }
    return JSONResponse(body, status_code=201, headers={"Cache-Control": "no-store"})


async def _one(request: Request) -> tuple[Partner, str, str] | Response:
    who = await _partner(request)
    if isinstance(who, Response):
        return who
    async with portal(request).services.db.session() as s:
        try:
            tenant = await partner_tenant(s, who[0].id, request.path_params["tenant_id"])
        except NotFound:
            return error(404, "no such tenant")
    return who[0], who[1], tenant.id


async def show(request: Request) -> Response:
    found = await _one(request)
    if isinstance(found, Response):
        return found
    partner, _actor, tenant_id = found
    async with portal(request).services.db.session() as s:
        row = (await summaries(s, partner.id, only=tenant_id))[0]
    return JSONResponse(row.as_json())


async def _change(request: Request, what: str) -> Response:
    found = await _one(request)
    if isinstance(found, Response):
        return found
    partner, actor, tenant_id = found
    data: dict[str, Any] = {}
    if what == "plan":
        body = await _body(request)
        if isinstance(body, Response):
            return body
        data = body
    async with portal(request).services.db.session() as s:
        tenant = await partner_tenant(s, partner.id, tenant_id)
        try:
            if what == "plan":
                plan = data.get("plan")
                if not isinstance(plan, str):
                    raise PermanentError("plan is required: trial, nfr or paid")
                said = await convert(s, tenant, plan, actor, _date(data.get("trial_ends_on")))
            else:
                said = await change_standing(s, tenant, what, actor)
        except PermanentError as exc:
            return error(409 if what in ("resume", "suspend", "terminate") else 422, str(exc))
        await s.commit()
        row = (await summaries(s, partner.id, only=tenant_id))[0]
    return JSONResponse({**row.as_json(), "said": said})


async def set_plan(request: Request) -> Response:
    return await _change(request, "plan")


async def suspend(request: Request) -> Response:
    return await _change(request, "suspend")


async def resume(request: Request) -> Response:
    return await _change(request, "resume")


async def terminate(request: Request) -> Response:
    return await _change(request, "terminate")


# --- the OpenAPI description -------------------------------------------------------------------

TENANT: dict[str, Any] = {
    "type": "object",
    "required": ["id", "name", "plan", "standing", "state", "domains"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "display_name": {"type": "string"},
        "domains": {"type": "array", "items": {"type": "string"}},
        "plan": {"type": "string", "enum": ["trial", "nfr", "paid"]},
        "standing": {"type": "string", "enum": ["active", "suspended", "terminated"]},
        "state": {
            "type": "string",
            "enum": ["active", "trial-ended", "suspended", "terminated"],
            "description": "standing, with a trial past its last day shown as trial-ended",
        },
        "trial_ends_on": {"type": ["string", "null"], "format": "date"},
        "users": {"type": "integer"},
        "messages_this_month": {"type": "integer"},
        "sealed_this_month": {"type": "integer"},
        "storage_bytes": {"type": "integer"},
        "created_at": {"type": "number"},
        "said": {"type": "string", "description": "what the change did, in a sentence"},
    },
}
_ID = {"name": "tenant_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_AUTH = {
    "401": _json(_ERR, "missing or invalid API key"),
    "403": _json(_ERR, "not a partner key"),
}
_ONE = {**_AUTH, "404": _json(_ERR, "no such tenant of this partner")}
_SECURITY = [{"partnerKey": []}]


def _action(summary: str) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "security": _SECURITY,
            "parameters": [_ID],
            "responses": {
                "200": _json(TENANT, "the tenant after the change"),
                "409": _json(_ERR, "not possible now (terminated, or suspended by billing)"),
                **_ONE,
            },
        }
    }


PATHS: dict[str, Any] = {
    "/api/v1/tenants": {
        "get": {
            "summary": "The partner's tenants with this month's figures",
            "security": _SECURITY,
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["tenants"],
                        "properties": {"tenants": {"type": "array", "items": TENANT}},
                    },
                    "the tenants",
                ),
                **_AUTH,
            },
        },
        "post": {
            "summary": "Create a tenant (the credentials are in the answer, only this once)",
            "security": _SECURITY,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["name", "domains"],
                            "properties": {
                                "name": {"type": "string", "maxLength": 100},
                                "domains": {"type": "array", "items": {"type": "string"}},
                                "plan": {"type": "string", "enum": ["trial", "nfr", "paid"]},
                                "trial_ends_on": {"type": ["string", "null"], "format": "date"},
                                "networks": {"type": "array", "items": {"type": "string"}},
                                "admin_email": {"type": "string", "format": "email"},
                            },
                        }
                    }
                },
            },
            "responses": {
                "201": _json(
                    {
                        **TENANT,
                        "properties": {
                            **TENANT["properties"],
                            "credentials": {
                                "type": "object",
                                "properties": {
                                    k: {"type": "string"}
                                    for k in (
                                        "smtp_username",
                                        "smtp_password",
                                        "connector_token",
                                        "api_key",
                                    )
                                },
                            },
                        },
                    },
                    "the tenant and its credentials",
                ),
                "400": _json(_ERR, "not a JSON object"),
                "413": _json(_ERR, "the body is too large"),
                "422": _json(_ERR, "refused: why (name taken, bad domain, plan, date...)"),
                **_AUTH,
            },
        },
    },
    "/api/v1/tenants/{tenant_id}": {
        "get": {
            "summary": "One of the partner's tenants",
            "security": _SECURITY,
            "parameters": [_ID],
            "responses": {"200": _json(TENANT, "the tenant"), **_ONE},
        }
    },
    "/api/v1/tenants/{tenant_id}/plan": {
        "post": {
            "summary": "Convert the plan (paid, nfr) or put the tenant on a trial ending then",
            "security": _SECURITY,
            "parameters": [_ID],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["plan"],
                            "properties": {
                                "plan": {"type": "string", "enum": ["trial", "nfr", "paid"]},
                                "trial_ends_on": {"type": ["string", "null"], "format": "date"},
                            },
                        }
                    }
                },
            },
            "responses": {
                "200": _json(TENANT, "the tenant after the change"),
                "400": _json(_ERR, "not a JSON object"),
                "413": _json(_ERR, "the body is too large"),
                "422": _json(_ERR, "refused: why"),
                **_ONE,
            },
        }
    },
    "/api/v1/tenants/{tenant_id}/suspend": _action("Suspend: the tenant's mail waits (451)"),
    "/api/v1/tenants/{tenant_id}/resume": _action("Resume a tenant suspended by its partner"),
    "/api/v1/tenants/{tenant_id}/terminate": _action("Terminate: the tenant's mail is refused"),
}
SECURITY_SCHEMES = {
    "partnerKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "a partner's API key (smp_...), made at /partner/api-keys",
    }
}
