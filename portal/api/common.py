"""What every API module shares and nothing else: the JSON error, the tenant of a bearer API
key, an officer's key (role admin or compliance), a size-bounded body. Imports no API module."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core.accounts.authentication import authenticate_api_key
from core.models import Tenant
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
    found = await tenant_of_key(request)
    if isinstance(found, Response):
        return found
    tenant, role = found
    if role not in ADMIN_ROLES:
        return error(403, f"this API key may not {may_not}")
    return tenant.id, f"api-key:{role}"


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
