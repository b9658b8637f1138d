"""``/api/v1/policy``: read and replace a tenant's encryption policy (same bearer API keys as
the rest of :mod:`portal.api`); the dry run is :mod:`portal.api.policy_dry_run`."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core.policy import PolicyError, parse_policy
from core.policy.store import get_stored, set_policy
from portal.api.common import AUTH_RESPONSES, bounded_body, error, tenant_of_key
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
    found = await tenant_of_key(request)
    if isinstance(found, Response):
        return found
    tenant, role = found
    if role != "admin":
        return error(403, "this API key may not change the policy")
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
        version = await set_policy(s, tenant.id, policy, f"api-key:{role}")
        await s.commit()
    return JSONResponse(
        {"version": version, "rules": len(policy.rules)}, headers={"ETag": _etag(version)}
    )


PATHS: dict[str, Any] = {
    "/api/v1/policy": {
        "get": {
            "summary": "The tenant's encryption policy (docs/POLICY.md) and its version",
            "responses": {
                "200": {"description": '{version, policy}; ETag "v<version>"'},
                **AUTH_RESPONSES,
            },
        },
        "put": {
            "summary": "Replace the policy (application/json or application/yaml); admin keys",
            "parameters": [
                {
                    "name": "If-Match",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string"},
                }
            ],
            "requestBody": {
                "content": {"application/json": {}, "application/yaml": {}},
                "required": True,
            },
            "responses": {
                "200": {"description": "{version, rules}"},
                "412": {"description": "If-Match does not name the current version"},
                "415": {"description": "not JSON or YAML"},
                "422": {"description": "{error, line, field}: the one-line validation error"},
                "403": {"description": "this key may not change the policy"},
                **AUTH_RESPONSES,
            },
        },
    },
}
