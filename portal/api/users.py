"""``/api/v1/users``: a tenant's portal users for admin API keys — listed, added (no mail is
sent: the person signs in by emailed code as on ``/admin/users``), given another role,
removed — through :mod:`core.accounts.users`, so the same rules hold (the last admin can be
neither removed nor demoted) and every change is audited with the key as actor."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core.accounts.users import ROLES, add_user, change_role, list_users, remove_user
from core.addresses import InvalidAddress, parse_address
from core.errors import NotFound, PermanentError
from core.models import User
from portal.api.common import caller_of_key, error, json_object
from portal.api.messages import NO_STORE
from portal.api.spec import TENANT_KEY, errors, json_body, ok, path_param
from portal.state import portal

MAX_BODY = 4096
_ADMIN = ("admin",)


def user_json(u: User) -> dict[str, Any]:
    return {
        "id": u.id,
        "email": u.email,
        "role": u.role,
        "created_at": u.created_at,
        "invited_by": u.invited_by,
        "last_signin_at": u.last_signin_at,
    }


async def list_all(request: Request) -> Response:
    caller = await caller_of_key(request, _ADMIN, "manage users")
    if isinstance(caller, Response):
        return caller
    async with portal(request).services.db.session() as s:
        rows = await list_users(s, caller.tenant.id)
    return JSONResponse({"users": [user_json(u) for u in rows]}, headers=NO_STORE)


def _role(data: dict[str, Any]) -> str | Response:
    role = data.get("role")
    if role not in ROLES:
        return error(422, f"role must be one of {', '.join(ROLES)}")
    return str(role)


async def add(request: Request) -> Response:
    caller = await caller_of_key(request, _ADMIN, "manage users")
    if isinstance(caller, Response):
        return caller
    data = await json_object(request, MAX_BODY)
    if isinstance(data, Response):
        return data
    role = _role(data)
    if isinstance(role, Response):
        return role
    try:
        email = parse_address(str(data.get("email") or "")[:320])
    except InvalidAddress:
        return error(422, "email is not an email address")
    async with portal(request).services.db.session() as s:
        try:
            user = await add_user(s, caller.tenant, email, role, caller.actor)
        except PermanentError as exc:
            return error(409, str(exc))
        await s.commit()
        return JSONResponse(user_json(user), status_code=201, headers=NO_STORE)


async def change(request: Request) -> Response:
    caller = await caller_of_key(request, _ADMIN, "manage users")
    if isinstance(caller, Response):
        return caller
    data = await json_object(request, MAX_BODY)
    if isinstance(data, Response):
        return data
    role = _role(data)
    if isinstance(role, Response):
        return role
    async with portal(request).services.db.session() as s:
        try:
            user = await change_role(
                s, caller.tenant.id, request.path_params["user_id"], role, caller.actor
            )
        except NotFound:
            return error(404, "no such user")
        except PermanentError as exc:
            return error(409, str(exc))
        body = user_json(user)
        await s.commit()
    return JSONResponse(body, headers=NO_STORE)


async def remove(request: Request) -> Response:
    caller = await caller_of_key(request, _ADMIN, "manage users")
    if isinstance(caller, Response):
        return caller
    async with portal(request).services.db.session() as s:
        try:
            user = await remove_user(
                s, caller.tenant.id, request.path_params["user_id"], caller.actor
            )
        except NotFound:
            return error(404, "no such user")
        except PermanentError as exc:
            return error(409, str(exc))
        body = user_json(user)
        await s.commit()
    return JSONResponse({"removed": body}, headers=NO_STORE)


_USER = {
    "type": "object",
    "required": ["id", "email", "role"],
    "properties": {
        "id": {"type": "string"},
        "email": {"type": "string"},
        "role": {"type": "string", "enum": list(ROLES)},
        "created_at": {"type": "number"},
        "invited_by": {"type": "string"},
        "last_signin_at": {"type": ["number", "null"]},
    },
}
_ROLE = {"type": "string", "enum": list(ROLES)}
_LAST_ADMIN = ("409", "already a user, or the last admin")

PATHS: dict[str, Any] = {
    "/api/v1/users": {
        "get": {
            "summary": "The tenant's portal users (admin keys)",
            "security": TENANT_KEY,
            "responses": {
                "200": ok(
                    "the users",
                    {
                        "type": "object",
                        "required": ["users"],
                        "properties": {"users": {"type": "array", "items": _USER}},
                    },
                ),
                **errors("403"),
            },
        },
        "post": {
            "summary": "Add a user with a role (admin keys); they sign in by emailed code",
            "security": TENANT_KEY,
            "requestBody": json_body(
                {
                    "type": "object",
                    "required": ["email", "role"],
                    "properties": {"email": {"type": "string", "format": "email"}, "role": _ROLE},
                }
            ),
            "responses": {
                "201": ok("the new user", _USER),
                **errors("400", "403", "413", _LAST_ADMIN, "422"),
            },
        },
    },
    "/api/v1/users/{user_id}": {
        "patch": {
            "summary": "Give a user another role (admin keys); their sessions end",
            "security": TENANT_KEY,
            "parameters": [path_param("user_id")],
            "requestBody": json_body(
                {"type": "object", "required": ["role"], "properties": {"role": _ROLE}}
            ),
            "responses": {
                "200": ok("the user", _USER),
                **errors("400", "403", "404", "413", _LAST_ADMIN, "422"),
            },
        },
        "delete": {
            "summary": "Remove a user (admin keys); their sessions end",
            "security": TENANT_KEY,
            "parameters": [path_param("user_id")],
            "responses": {
                "200": ok(
                    "the removed user",
                    {"type": "object", "required": ["removed"], "properties": {"removed": _USER}},
                ),
                **errors("403", "404", _LAST_ADMIN),
            },
        },
    },
}
