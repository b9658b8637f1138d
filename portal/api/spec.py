"""The building blocks of the OpenAPI document that every API module's ``PATHS`` use: the
one error schema (``{"error": "..."}``, :mod:`portal.api.errors`), responses and request
bodies in JSON, paging parameters, and the two security schemes (a tenant's API key; a
support desk agent's key). Imports no API module, so each may import it."""

from __future__ import annotations

from typing import Any

ERROR_REF = {"$ref": "#/components/schemas/Error"}
ERROR = {"application/json": {"schema": ERROR_REF}}
TENANT_KEY = [{"tenantApiKey": []}]

COMPONENTS: dict[str, Any] = {
    "securitySchemes": {
        "tenantApiKey": {
            "type": "http",
            "scheme": "bearer",
            "description": "a tenant's API key (smk_...), made on /admin/api-keys or "
            "POST /api/v1/api-keys; its scope (admin, compliance, sender) decides what it may do",
        },
        "supportDeskKey": {
            "type": "http",
            "scheme": "bearer",
            "description": "a support desk agent's key (not a tenant API key)",
        },
    },
    "schemas": {
        "Error": {
            "type": "object",
            "properties": {"error": {"type": "string"}},
            "required": ["error"],
            "description": "every error under /api/ (4xx and 5xx) is this object",
        },
    },
}

_DESCRIPTIONS = {
    "400": "the body is not a JSON object or a field makes no sense",
    "401": "missing or invalid API key",
    "403": "this API key's scope may not do this",
    "404": "no such thing for this tenant",
    "405": "the path does not take this method",
    "409": "the request conflicts with the current state",
    "413": "the request body is too large",
    "415": "the body's content type is not accepted",
    "422": "a value is not valid",
}


def json_body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def ok(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def errors(*codes: tuple[str, str] | str) -> dict[str, Any]:
    """401 always, then each code given (``"404"`` or ``("404", "what it means here")``)."""
    out = {"401": {"description": _DESCRIPTIONS["401"], "content": ERROR}}
    for code in codes:
        number, description = (code, _DESCRIPTIONS[code]) if isinstance(code, str) else code
        out[number] = {"description": description, "content": ERROR}
    return out


def path_param(name: str, description: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "in": "path", "required": True}
    out["schema"] = {"type": "string", "minLength": 1, "maxLength": 200}
    if description:
        out["description"] = description
    return out


def query_param(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


PAGING = [
    query_param(
        "limit", {"type": "integer", "minimum": 1, "maximum": 200}, "at most this many (50)"
    ),
    query_param(
        "before", {"type": "string", "maxLength": 100}, "the next_before of the previous page"
    ),
]
NULLABLE_TIME = {"type": ["number", "null"], "description": "Unix time"}
TIME = {"type": "number", "description": "Unix time"}
