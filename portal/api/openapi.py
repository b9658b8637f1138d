"""``/api/v1/openapi.json``: the OpenAPI document, assembled from the API modules' own path
specs (``PATHS``). Only this module imports them; none imports it back."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from portal.api import (
    archive,
    holds,
    keys,
    message_control,
    messages,
    partner_tenants,
    policy,
    policy_dry_run,
)
from portal.support.api import SUPPORT_PATHS

API_VERSION = "1"
OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "sealmail API", "version": API_VERSION},
    "components": {
        "securitySchemes": {
            "apiKey": {"type": "http", "scheme": "bearer"},
            **partner_tenants.SECURITY_SCHEMES,
        },
    },
    "security": [{"apiKey": []}],
}


def document() -> dict[str, Any]:
    """The whole document. The quarantine API (:mod:`portal.api.quarantine`) has no path
    specs yet, so it is not listed."""
    paths = {
        **messages.PATHS,
        **message_control.CONTROL_PATHS,
        **keys.PATHS,
        **policy.PATHS,
        **policy_dry_run.PATHS,
        **archive.PATHS,
        **holds.PATHS,
        **SUPPORT_PATHS,
        **partner_tenants.PATHS,
    }
    return {**OPENAPI, "paths": paths}


async def openapi(request: Request) -> Response:
    return JSONResponse(document())
