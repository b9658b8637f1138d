"""``/api/v1/brands``: a tenant's brands (the looks of its mail and pages) for admin API keys
— listed, read, changed through :mod:`branding.brands` (the same checks as
``/admin/branding``: colour contrast, lengths, an https privacy address), audited. The logo
is uploaded in the browser only (``/admin/branding``): here it is described, not sent."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from branding.brands import (
    TEXT_LIMITS,
    brand_by_id,
    brands_of,
    checked_fields,
    default_brand,
    update_brand,
)
from branding.models import Brand
from core.errors import NotFound, PermanentError
from core.models import Tenant
from portal.api.common import caller_of_key, error, json_object
from portal.api.messages import NO_STORE
from portal.api.spec import TENANT_KEY, errors, json_body, ok, path_param
from portal.state import portal

MAX_BODY = 64 * 1024
_ADMIN = ("admin",)
_FLAGS = ("show_sender", "show_subject")


def brand_json(b: Brand) -> dict[str, Any]:
    out: dict[str, Any] = {"id": b.id, "name": b.name, "is_default": b.is_default}
    out.update({key: getattr(b, key) or "" for key in TEXT_LIMITS})
    out.update(
        color=b.color,
        text_color=b.text_color,
        show_sender=bool(b.show_sender),
        show_subject=bool(b.show_subject),
        has_logo=b.logo_png is not None,
        updated_at=b.updated_at,
        updated_by=b.updated_by or "",
    )
    return out


async def list_all(request: Request) -> Response:
    caller = await caller_of_key(request, _ADMIN, "manage branding")
    if isinstance(caller, Response):
        return caller
    async with portal(request).services.db.session() as s:
        tenant = await s.get(Tenant, caller.tenant.id)
        assert tenant is not None
        await default_brand(s, tenant, caller.actor)  # made from its settings on first need
        await s.commit()
        rows = await brands_of(s, caller.tenant.id)
    return JSONResponse({"brands": [brand_json(b) for b in rows]}, headers=NO_STORE)


async def show(request: Request) -> Response:
    caller = await caller_of_key(request, _ADMIN, "manage branding")
    if isinstance(caller, Response):
        return caller
    async with portal(request).services.db.session() as s:
        try:
            row = await brand_by_id(s, caller.tenant.id, request.path_params["brand_id"])
        except NotFound:
            return error(404, "no such brand")
        return JSONResponse(brand_json(row), headers=NO_STORE)


async def change(request: Request) -> Response:
    """``PATCH``: the fields given change, the others stay; the whole is checked again."""
    caller = await caller_of_key(request, _ADMIN, "manage branding")
    if isinstance(caller, Response):
        return caller
    data = await json_object(request, MAX_BODY)
    if isinstance(data, Response):
        return data
    known = (*TEXT_LIMITS, "color", "text_color", *_FLAGS)
    unknown = sorted(set(data) - set(known))
    if unknown:
        return error(422, f"unknown field {unknown[0]!r}")
    for key, value in data.items():
        if key in _FLAGS and not isinstance(value, bool):
            return error(422, f"{key} must be true or false")
        if key not in _FLAGS and not isinstance(value, str):
            return error(422, f"{key} must be a string")
    async with portal(request).services.db.session() as s:
        try:
            row = await brand_by_id(s, caller.tenant.id, request.path_params["brand_id"])
        except NotFound:
            return error(404, "no such brand")
        current = brand_json(row)
        try:
            fields = checked_fields({**current, **data})
        except PermanentError as exc:
            return error(422, str(exc))
        await update_brand(s, row, fields, caller.actor)
        body = brand_json(row)
        await s.commit()
    return JSONResponse(body, headers=NO_STORE)


_TEXTS = {key: {"type": "string", "maxLength": limit} for key, limit in TEXT_LIMITS.items()}
_COLORS = {
    "color": {"type": "string", "pattern": "^#[0-9a-fA-F]{6}$"},
    "text_color": {"type": "string", "pattern": "^#[0-9a-fA-F]{6}$"},
}
_BRAND = {
    "type": "object",
    "required": ["id", "name", "is_default", "color", "text_color"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "is_default": {"type": "boolean"},
        **{key: {"type": "string"} for key in TEXT_LIMITS},
        **_COLORS,
        "show_sender": {"type": "boolean"},
        "show_subject": {"type": "boolean"},
        "has_logo": {"type": "boolean", "description": "the logo is uploaded on /admin/branding"},
        "updated_at": {"type": ["number", "null"]},
        "updated_by": {"type": "string"},
    },
}
_PATCH = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        **_TEXTS,
        **_COLORS,
        "show_sender": {"type": "boolean"},
        "show_subject": {"type": "boolean"},
    },
}
_ID = path_param("brand_id")

PATHS: dict[str, Any] = {
    "/api/v1/brands": {
        "get": {
            "summary": "The tenant's brands, the default first (admin keys)",
            "security": TENANT_KEY,
            "responses": {
                "200": ok(
                    "the brands",
                    {
                        "type": "object",
                        "required": ["brands"],
                        "properties": {"brands": {"type": "array", "items": _BRAND}},
                    },
                ),
                **errors("403"),
            },
        }
    },
    "/api/v1/brands/{brand_id}": {
        "get": {
            "summary": "One brand (admin keys)",
            "security": TENANT_KEY,
            "parameters": [_ID],
            "responses": {"200": ok("the brand", _BRAND), **errors("403", "404")},
        },
        "patch": {
            "summary": "Change a brand's texts, colours and what its mail shows (admin keys); "
            "the logo is uploaded on /admin/branding only",
            "security": TENANT_KEY,
            "parameters": [_ID],
            "requestBody": json_body(_PATCH),
            "responses": {
                "200": ok("the brand as changed", _BRAND),
                **errors("400", "403", "404", "413", ("422", "a value the brand may not have")),
            },
        },
    },
}
