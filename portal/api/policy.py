"""``/api/v1/policy``: read and replace a tenant's encryption policy (same bearer API keys as
the rest of :mod:`portal.api`); the dry run is :mod:`portal.api.policy_dry_run`."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core.policy import PolicyError, parse_policy
from core.policy.store import get_stored, set_policy
from portal.api.common import bounded_body, caller_of_key, error, tenant_of_key
from portal.api.spec import TENANT_KEY, errors, ok
from portal.state import portal

MAX_POLICY = 1024 * 1024
_YAML = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


def _etag(version: int) -> str:
    return f'"v{version}"'


async def get_policy(request: Request) -> Response:
    found = await tenant_of_key(request)
    if isinstance(found, Response):
        return found
    tenant, _role = found
    async with portal(request).services.db.session() as s:
        try:
            stored = await get_stored(s, tenant.id)
        except PolicyError as exc:
            return error(500, f"the stored policy is invalid: {exc}")
    return JSONResponse(
        {
            "version": stored.version,
            "updated_at": stored.updated_at,
            "updated_by": stored.updated_by,
            "policy": stored.policy.to_document(),
        },
        headers={"ETag": _etag(stored.version), "Cache-Control": "no-store"},
    )


async def put_policy(request: Request) -> Response:
    caller = await caller_of_key(request, ("admin",), "change the policy")
    if isinstance(caller, Response):
        return caller
    tenant = caller.tenant
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        fmt = "json"
    elif ctype in _YAML:
        fmt = "yaml"
    else:
        return error(415, "send the policy as application/json or application/yaml")
    raw = await bounded_body(request, MAX_POLICY)
    if raw is None:
        return error(413, f"a policy is at most {MAX_POLICY} bytes")
    try:
        policy = parse_policy(raw.decode("utf-8"), fmt)
    except UnicodeDecodeError:
        return error(422, "the policy must be UTF-8 text")
    except PolicyError as exc:
        return JSONResponse(
            {"error": str(exc), "line": exc.line, "field": exc.field or None}, status_code=422
        )
    if_match = request.headers.get("if-match")
    async with portal(request).services.db.session() as s:
        if if_match is not None:
            try:
                current = (await get_stored(s, tenant.id)).version
            except PolicyError:
                current = -1
            if if_match != _etag(current):
                return error(412, "the policy changed since it was read (If-Match)")
        version = await set_policy(s, tenant.id, policy, caller.actor)
        await s.commit()
    return JSONResponse(
        {"version": version, "rules": len(policy.rules)}, headers={"ETag": _etag(version)}
    )


_STORED = {
    "type": "object",
    "required": ["version", "policy"],
    "properties": {
        "version": {"type": "integer"},
        "updated_at": {"type": ["number", "null"]},
        "updated_by": {"type": ["string", "null"]},
        "policy": {"type": "object", "description": "the policy document (docs/POLICY.md)"},
    },
}
_INVALID = {
    "description": "{error, line, field}: the one-line validation error",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {"type": "string"},
                    "line": {"type": ["integer", "null"]},
                    "field": {"type": ["string", "null"]},
                },
            }
        }
    },
}

PATHS: dict[str, Any] = {
    "/api/v1/policy": {
        "get": {
            "summary": "The tenant's encryption policy (docs/POLICY.md) and its version",
            "security": TENANT_KEY,
            "responses": {"200": ok('the policy; ETag "v<version>"', _STORED), **errors()},
        },
        "put": {
            "summary": "Replace the policy (application/json or application/yaml); admin keys",
            "security": TENANT_KEY,
            "parameters": [
                {
                    "name": "If-Match",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string"},
                }
            ],
            "requestBody": {
                "content": {
                    "application/json": {"schema": {"type": "object"}},
                    "application/yaml": {"schema": {"type": "string"}},
                },
                "required": True,
            },
            "responses": {
                "200": ok(
                    "the new version",
                    {
                        "type": "object",
                        "required": ["version", "rules"],
                        "properties": {
                            "version": {"type": "integer"},
                            "rules": {"type": "integer"},
                        },
                    },
                ),
                **errors(
                    "403",
                    ("412", "If-Match does not name the current version"),
                    "413",
                    ("415", "not JSON or YAML"),
                ),
                "422": _INVALID,
            },
        },
    },
}
