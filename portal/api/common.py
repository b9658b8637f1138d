"""What every API module shares and nothing else: the JSON error, the tenant of a bearer API
key, an officer's key (role admin or compliance), the caller of a key with its scope, actor
and (for a sender key) owner, a size-bounded body and JSON object. Imports no API module.

A sender key acts for one person: the address recorded as its maker (``created_by``). A key
made on ``/admin/api-keys`` is its maker's own; ``POST /api/v1/api-keys`` names the owner of
a sender key (``owner``), recorded there, while the audit log names who really made it. A
sender key whose maker is not an address (made by the CLI) has no owner: it sees no messages
and may not send."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core.accounts.authentication import authenticate_api_key
from core.addresses import InvalidAddress, parse_address
from core.hashing import sha256_hex
from core.models import ApiKey, Tenant
from portal.admin.doors import ADMIN_ROLES
from portal.state import portal

AUTH_RESPONSES = {"401": {"description": "missing or invalid API key"}}


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def tenant_of_key(request: Request) -> tuple[Tenant, str] | Response:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return error(401, "missing bearer API key", {"WWW-Authenticate": "Bearer"})
    async with portal(request).services.db.session() as s:
        found = await authenticate_api_key(s, key)
    if found is None:
        return error(401, "invalid API key", {"WWW-Authenticate": "Bearer"})
    return found


async def officer_of_key(request: Request, may_not: str) -> tuple[str, str] | Response:
    """The tenant id and actor of an API key of role admin or compliance, or the error."""
    caller = await caller_of_key(request, ADMIN_ROLES, may_not)
    if isinstance(caller, Response):
        return caller
    return caller.tenant.id, caller.actor


async def bounded_body(request: Request, limit: int) -> bytes | None:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return None
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            return None
    return bytes(data)


@dataclasses.dataclass(frozen=True)
class Caller:
    """Who calls: the tenant, the key's scope, the actor the audit log names
    (``api-key:<label or prefix>``), and for a sender key the address it acts for."""

    tenant: Tenant
    scope: str
    actor: str
    owner: str


def _owner(row: ApiKey) -> str:
    if row.role != "sender":
        return ""
    try:
        return parse_address(row.created_by)
    except InvalidAddress:
        return ""


async def caller_of_key(
    request: Request, scopes: tuple[str, ...], may_not: str
) -> Caller | Response:
    """The caller of a key whose scope is one of ``scopes``, or the 401/403 error."""
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return error(401, "missing bearer API key", {"WWW-Authenticate": "Bearer"})
    async with portal(request).services.db.session() as s:
        found = await authenticate_api_key(s, key)
        row = await s.get(ApiKey, sha256_hex(key.strip())) if found else None
    if found is None or row is None:
        return error(401, "invalid API key", {"WWW-Authenticate": "Bearer"})
    tenant, scope = found
    if scope not in scopes:
        return error(403, f"this API key ({scope}) may not {may_not}")
    actor = f"api-key:{row.label or row.prefix}"[:320]
    return Caller(tenant=tenant, scope=scope, actor=actor, owner=_owner(row))


async def json_object(request: Request, limit: int) -> dict[str, Any] | Response:
    """The body as a JSON object (413 over ``limit`` bytes, 400 not a JSON object)."""
    raw = await bounded_body(request, limit)
    if raw is None:
        return error(413, f"the request body is larger than {limit} bytes")
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        return error(400, "the request body is not JSON")
    if not isinstance(data, dict):
        return error(400, "the request body must be a JSON object")
    return data


def limit_of(request: Request, default: int = 50, most: int = 200) -> int | Response:
    raw = request.query_params.get("limit", "")
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= most:
        return error(422, f"limit must be a whole number from 1 to {most}")
    return int(raw)
