"""The portal's Starlette application: ``create_app(settings, services)``; nothing happens at
import time. Without ``services`` the app opens them in its lifespan and closes them after.

No response is built from the request's ``Host``: Starlette's own slash redirect (an
absolute URL from ``Host`` and the connection's scheme, so ``http`` behind a TLS proxy) is
replaced by a relative one. Requests are not refused by ``Host`` either: a tenant's portal
host is set at run time (``/admin``, ``tenant update``), so an allow-list would mean a query
per request or a stale cache, and load balancers probe by address; nothing here needs it."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Match

from core.config.settings import Settings
from core.errors import NotFound, TransientError
from core.services import Services
from portal.api.errors import allowed_methods, api_error, is_api
from portal.billing_guard import SuspendedTenantGuard
from portal.pages import Pages
from portal.plain_http import over_plain_http, plain_http_page
from portal.reader.access import Locked
from portal.reader.unlock import locked_page
from portal.routes import routes
from portal.security import SecuredStarlette
from portal.state import PortalState

log = logging.getLogger("sealmail.portal")


async def _flush_views(app: Starlette) -> None:
    state = getattr(app.state, "portal", None)
    if state is not None and state.views is not None:
        await state.views.close()


def create_app(settings: Settings, services: Services | None = None) -> Starlette:
    pages = Pages()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if services is not None:
            try:
                yield
            finally:
                await _flush_views(app)
            return
        opened = Services.open(settings)
        app.state.portal = PortalState.build(settings, opened, pages)
        try:
            yield
        finally:
            await _flush_views(app)
            await opened.close()

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if is_api(request):
            headers = dict(exc.headers or {})
            if exc.status_code == 405:
                headers["Allow"] = allowed_methods(request)
            return api_error(exc.status_code, headers=headers)
        if isinstance(exc, Locked) and request.method == "GET":
            return await locked_page(request, exc)
        if exc.status_code in (401, 403) and request.method == "POST" and over_plain_http(request):
            return plain_http_page(request)
        if exc.status_code == 404:
            other = _slash_twin(request)
            if other is not None:
                return RedirectResponse(other, status_code=307)
        return pages.error(exc.status_code, headers=exc.headers)

    async def not_found(request: Request, exc: Exception) -> Response:
        return api_error(404) if is_api(request) else pages.error(404)

    async def unavailable(request: Request, exc: Exception) -> Response:
        log.warning("portal: dependency unavailable (%s)", type(exc.__cause__ or exc).__name__)
        if is_api(request):
            return api_error(503, headers={"Retry-After": "30"})
        return pages.error(503, headers={"Retry-After": "30"})

    async def server_error(request: Request, exc: Exception) -> Response:
        log.error("portal: unhandled %s in %s", type(exc).__name__, _route_name(request))
        return api_error(500) if is_api(request) else pages.error(500)

    app = SecuredStarlette(
        routes=routes(),
        middleware=[Middleware(SuspendedTenantGuard)],
        exception_handlers={
            HTTPException: http_error,
            NotFound: not_found,
            TransientError: unavailable,
            Exception: server_error,
        },
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False  # absolute, from Host: _slash_twin instead
    if services is not None:
        app.state.portal = PortalState.build(settings, services, pages)
    return app


def _slash_twin(request: Request) -> str | None:
    """For a GET that found no route, the same path with its trailing slash added or taken
    away, when a route has it: as a relative URL (never ``//host``), query kept."""
    path: str = request.scope["path"]
    if request.method not in ("GET", "HEAD") or path == "/" or "\\" in path:
        return None
    other = path.rstrip("/") if path.endswith("/") else path + "/"
    if not other.startswith("/") or other.startswith("//"):
        return None
    scope = {**request.scope, "path": other}
    if not any(route.matches(scope)[0] is not Match.NONE for route in request.app.router.routes):
        return None
    query = request.url.query
    return f"{other}?{query}" if query else other


def _route_name(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", "?")
