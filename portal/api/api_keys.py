"""``/api/v1/api-keys``: a tenant's API keys for programs — listed with scope, maker and last
use (admin and compliance keys), made and revoked (admin keys) through
:mod:`core.accounts.api_keys`; a new key is in the response that makes it and never again
(only its SHA-256 is kept). A sender key names its ``owner``, a user of the tenant, whose
messages it sees and sends (:mod:`portal.api.common`)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core.accounts.api_keys import SCOPES, create_key, key_id, list_keys, revoke_key
from core.accounts.users import find_user
from core.errors import NotFound, PermanentError
from core.models import ApiKey
from portal.api.common import caller_of_key, error, json_object
from portal.api.messages import NO_STORE
from portal.api.spec import TENANT_KEY, errors, json_body, ok, path_param
from portal.state import portal

MAX_BODY = 4096


def key_json(k: ApiKey) -> dict[str, Any]:
    return {
        "id": key_id(k),
        "label": k.label,
        "scope": k.role,
        "prefix": k.prefix,
        "created_at": k.created_at,
        "created_by": k.created_by,
        "last_used_at": k.last_used_at,
        "revoked_at": k.revoked_at,
    }


async def list_all(request: Request) -> Response:
    caller = await caller_of_key(request, ("admin", "compliance"), "list API keys")
    if isinstance(caller, Response):
        return caller
    async with portal(request).services.db.session() as s:
        rows = await list_keys(s, caller.tenant.id)
    return JSONResponse({"api_keys": [key_json(k) for k in rows]}, headers=NO_STORE)


async def create(request: Request) -> Response:
    caller = await caller_of_key(request, ("admin",), "make API keys")
    if isinstance(caller, Response):
        return caller
    data = await json_object(request, MAX_BODY)
    if isinstance(data, Response):
        return data
    label, scope, owner = data.get("label"), data.get("scope"), data.get("owner")
    if not isinstance(label, str) or not isinstance(scope, str):
        return error(422, "label and scope are required strings")
    if scope == "sender" and not isinstance(owner, str):
        return error(422, "a sender key needs an owner: the address of a user of the tenant")
    async with portal(request).services.db.session() as s:
        user = None
        if scope == "sender":
            assert isinstance(owner, str)
            user = await find_user(s, caller.tenant.id, owner[:320])
            if user is None:
                return error(422, "the owner must be a user of the tenant")
        try:
            key, row = await create_key(s, caller.tenant.id, label, scope, caller.actor)
        except PermanentError as exc:
            return error(422, str(exc))
        if user is not None:
            row.created_by = user.email  # whom a sender key acts for; the audit names the maker
        await s.commit()
        body = {**key_json(row), "key": key}
    return JSONResponse(body, status_code=201, headers=NO_STORE)


async def revoke(request: Request) -> Response:
    caller = await caller_of_key(request, ("admin",), "revoke API keys")
    if isinstance(caller, Response):
        return caller
    async with portal(request).services.db.session() as s:
        try:
            row = await revoke_key(
                s, caller.tenant.id, request.path_params["api_key_id"][:40], caller.actor
            )
        except NotFound:
            return error(404, "no such API key")
        body = key_json(row)
        await s.commit()
    return JSONResponse(body, headers=NO_STORE)


_KEY = {
    "type": "object",
    "required": ["id", "label", "scope", "prefix", "created_at"],
    "properties": {
        "id": {"type": "string", "description": "names the key (the start of its hash)"},
        "label": {"type": "string"},
        "scope": {"type": "string", "enum": list(SCOPES)},
        "prefix": {"type": "string", "description": "the key's first characters"},
        "created_at": {"type": "number"},
        "created_by": {"type": "string", "description": "its maker; a sender key's owner"},
        "last_used_at": {"type": ["number", "null"]},
        "revoked_at": {"type": ["number", "null"]},
    },
}
_NEW_KEY = {
    **_KEY,
    "required": [*_KEY["required"], "key"],
    "properties": {
        **_KEY["properties"],
        "key": {"type": "string", "description": "the key itself: shown this once only"},
    },
}

PATHS: dict[str, Any] = {
    "/api/v1/api-keys": {
        "get": {
            "summary": "The tenant's API keys with scope and last use (admin, compliance)",
            "security": TENANT_KEY,
            "responses": {
                "200": ok(
                    "the keys (never the keys themselves)",
                    {
                        "type": "object",
                        "required": ["api_keys"],
                        "properties": {"api_keys": {"type": "array", "items": _KEY}},
                    },
                ),
                **errors("403"),
            },
        },
        "post": {
            "summary": "Make an API key (admin keys); the key is in this response only",
            "security": TENANT_KEY,
            "requestBody": json_body(
                {
                    "type": "object",
                    "required": ["label", "scope"],
                    "properties": {
                        "label": {"type": "string", "minLength": 1, "maxLength": 100},
                        "scope": {"type": "string", "enum": list(SCOPES)},
                        "owner": {
                            "type": "string",
                            "format": "email",
                            "description": "sender keys: the user whose messages it sees and sends",
                        },
                    },
                }
            ),
            "responses": {
                "201": ok("the new key", _NEW_KEY),
                **errors("400", "403", "413", "422"),
            },
        },
    },
    "/api/v1/api-keys/{api_key_id}": {
        "delete": {
            "summary": "Revoke an API key at once (admin keys)",
            "security": TENANT_KEY,
            "parameters": [path_param("api_key_id")],
            "responses": {"200": ok("the revoked key", _KEY), **errors("403", "404")},
        }
    },
}
