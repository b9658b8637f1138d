"""The portal's Starlette application: ``create_app(settings, services)``; nothing happens at
import time. Without ``services`` the app opens them in its lifespan and closes them after."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from core.config.settings import Settings
from core.errors import NotFound, TransientError
from core.services import Services
from portal.billing_guard import SuspendedTenantGuard
from portal.pages import Pages
from portal.routes import routes
from portal.security import SecurityHeadersMiddleware, add_security_headers
from portal.state import PortalState

log = logging.getLogger("sealmail.portal")


def create_app(settings: Settings, services: Services | None = None) -> Starlette:
    pages = Pages()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if services is not None:
            yield
            return
        opened = Services.open(settings)
        app.state.portal = PortalState.build(settings, opened, pages)
        try:
            yield
        finally:
            await opened.close()

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return pages.error(exc.status_code, headers=exc.headers)

    async def not_found(request: Request, exc: Exception) -> Response:
        return pages.error(404)

    async def unavailable(request: Request, exc: Exception) -> Response:
        log.warning("portal: dependency unavailable (%s)", type(exc.__cause__ or exc).__name__)
        return pages.error(503, headers={"Retry-After": "30"})

    async def server_error(request: Request, exc: Exception) -> Response:
        # ServerErrorMiddleware sits outside our middleware: add the headers here
        log.error("portal: unhandled %s in %s", type(exc).__name__, _route_name(request))
        response = pages.error(500)
        add_security_headers(MutableHeaders(raw=response.raw_headers), request.url.path)
        return response

    app = Starlette(
        routes=routes(),
        middleware=[
            Middleware(SecurityHeadersMiddleware),
            Middleware(SuspendedTenantGuard),
        ],
        exception_handlers={
            HTTPException: http_error,
            NotFound: not_found,
            TransientError: unavailable,
            Exception: server_error,
        },
        lifespan=lifespan,
    )
    if services is not None:
        app.state.portal = PortalState.build(settings, services, pages)
    return app


def _route_name(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", "?")
