"""The API's errors: every response under ``/api/`` that the handlers did not make themselves
(an unknown path, a wrong method, a server error) is the same JSON object the handlers
answer with, ``{"error": "..."}``, so a program never has to parse an HTML page. Used by the
app's exception handlers (:mod:`portal.app`), keyed on the path prefix, once."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

API_PREFIX = "/api/"
WORDS = {
    400: "the request is malformed",
    401: "missing or invalid API key",
    403: "this API key may not do that",
    404: "no such API path",
    405: "this path does not take that method (see the Allow header)",
    413: "the request body is too large",
    422: "the request is not valid",
    500: "internal error: the request was logged, try again later",
    503: "temporarily unavailable, retry later",
}


def is_api(request: Request) -> bool:
    return str(request.scope.get("path", "")).startswith(API_PREFIX)


def allowed_methods(request: Request) -> str:
    """Every method some route takes at this path (Starlette's own 405 names only the first
    route that matched the path, so ``GET`` where ``GET, PUT`` is true)."""
    path = str(request.scope.get("path", ""))
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.path_regex.match(path) and route.methods:
            methods |= route.methods
    return ", ".join(sorted(methods))


def api_error(status: int, headers: Mapping[str, str] | None = None) -> Response:
    """``{"error": ...}`` with ``status``; the headers the exception carried (``Allow`` on
    a 405, ``WWW-Authenticate`` on a 401) are kept."""
    try:
        words = WORDS.get(status) or HTTPStatus(status).phrase.lower()
    except ValueError:
        words = "error"
    return JSONResponse(
        {"error": words},
        status_code=status,
        headers={"Cache-Control": "no-store", **dict(headers or {})},
    )
