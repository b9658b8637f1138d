"""``/api/v1/openapi.json``: the OpenAPI 3.1 document, assembled from the API modules' own
path specs (``PATHS``) and the shared pieces of :mod:`portal.api.spec`. Only this module
imports them; none imports it back. ``tests/portal/test_openapi_routes.py`` holds it equal
to the route table: an operation served but not documented (or the reverse) fails it."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from portal.api import (
    api_keys,
    archive,
    audit,
    billing_webhook,
    brands,
    holds,
    keys,
    message_control,
    messages,
    partner_tenants,
    policy,
    policy_dry_run,
    quarantine,
    sent,
    users,
)
from portal.api.spec import COMPONENTS, TENANT_KEY, ok
from portal.support.api import SUPPORT_PATHS

API_VERSION = "1"
OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "sealmail API",
        "version": API_VERSION,
        "description": "A tenant's programs use a bearer API key; its scope (admin, "
        "compliance, sender) decides what it may do (docs/API.md). Every error is "
        '{"error": "..."} in JSON.',
    },
    "components": {
        **COMPONENTS,
        "securitySchemes": {
            **COMPONENTS["securitySchemes"],
            **partner_tenants.SECURITY_SCHEMES,
        },
    },
    "security": TENANT_KEY,
}
_SELF: dict[str, Any] = {
    "/api/v1/openapi.json": {
        "get": {
            "summary": "This document",
            "security": [],
            "responses": {"200": ok("the OpenAPI 3.1 document", {"type": "object"})},
        }
    }
}


def document() -> dict[str, Any]:
    """The whole document."""
    paths = {
        **_SELF,
        **sent.PATHS,
        **messages.PATHS,
        **message_control.CONTROL_PATHS,
        **keys.PATHS,
        **policy.PATHS,
        **policy_dry_run.PATHS,
        **quarantine.PATHS,
        **archive.PATHS,
        **holds.PATHS,
        **users.PATHS,
        **brands.PATHS,
        **audit.PATHS,
        **api_keys.PATHS,
        **SUPPORT_PATHS,
        **billing_webhook.PATHS,
        **partner_tenants.PATHS,
    }
    return {**OPENAPI, "paths": paths}


async def openapi(request: Request) -> Response:
    return JSONResponse(document())
