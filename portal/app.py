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
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from archive.services import Services
from branding.templating import STATIC_DIR
from core.config.settings import Settings
from core.errors import NotFound, TransientError
from portal import (
    admin_api,
    admin_archive,
    admin_auth,
    admin_keys,
    admin_pages,
    admin_retention,
    api,
    api_keys,
    api_policy,
    billing,
    entry,
    ops,
    reading,
    sent,
    support,
)
from portal.pages import Pages
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
        routes=[
            Route("/m/{token}", entry.show, methods=["GET"]),
            Route("/m/{token}/code", entry.send_code, methods=["POST"]),
            Route("/m/{token}/verify", entry.verify, methods=["POST"]),
            Route("/inbox", reading.inbox, methods=["GET"]),
            Route("/messages/{message_id}", reading.message, methods=["GET"]),
            Route("/messages/{message_id}/body", reading.body, methods=["GET"]),
            Route(
                "/messages/{message_id}/attachments/{n:int}", reading.attachment, methods=["GET"]
            ),
            Route("/logout", reading.logout, methods=["POST"]),
            Route("/admin", admin_pages.overview, methods=["GET"]),
            Route("/admin/login", admin_auth.login_form, methods=["GET"]),
            Route("/admin/login", admin_auth.send_code, methods=["POST"]),
            Route("/admin/verify", admin_auth.verify, methods=["POST"]),
            Route("/admin/logout", admin_auth.logout, methods=["POST"]),
            Route("/admin/quarantine", admin_pages.quarantine_list, methods=["GET"]),
            Route("/admin/quarantine/{held_id}", admin_pages.held_detail, methods=["GET"]),
            Route("/admin/quarantine/{held_id}/release", admin_pages.release, methods=["POST"]),
            Route("/admin/quarantine/{held_id}/reject", admin_pages.reject, methods=["POST"]),
            Route("/admin/messages/{message_id}", admin_pages.message_decisions, methods=["GET"]),
            Route("/admin/keys", admin_keys.keys_page, methods=["GET"]),
            Route("/admin/keys", admin_keys.import_keys, methods=["POST"]),
            Route("/admin/keys/{key_id}/remove", admin_keys.confirm_remove, methods=["GET"]),
            Route("/admin/keys/{key_id}/remove", admin_keys.remove, methods=["POST"]),
            Route("/sent", sent.sent_list, methods=["GET"]),
            Route("/sent/login", sent.login_form, methods=["GET"]),
            Route("/sent/login", sent.send_code, methods=["POST"]),
            Route("/sent/verify", sent.verify, methods=["POST"]),
            Route("/sent/logout", sent.logout, methods=["POST"]),
            Route("/sent/{message_id}", sent.sent_message, methods=["GET"]),
            Route("/brand/{tenant_id}.css", ops.brand_css, methods=["GET"]),
            Route("/api/v1/messages/{message_id}", api.message_status, methods=["GET"]),
            Route("/api/v1/openapi.json", api.openapi, methods=["GET"]),
            Route("/api/v1/keys", api_keys.list_keys, methods=["GET"]),
            Route("/api/v1/keys", api_keys.import_keys, methods=["POST"]),
            Route("/api/v1/keys/{fingerprint}", api_keys.remove_key, methods=["DELETE"]),
            Route("/api/v1/policy", api_policy.get_policy, methods=["GET"]),
            Route("/api/v1/policy", api_policy.put_policy, methods=["PUT"]),
            Route("/api/v1/policy/dry-run", api_policy.dry_run, methods=["POST"]),
            Route("/api/v1/quarantine", admin_api.list_held, methods=["GET"]),
            Route("/api/v1/quarantine/{held_id}/release", admin_api.release, methods=["POST"]),
            Route("/api/v1/quarantine/{held_id}/reject", admin_api.reject, methods=["POST"]),
            *admin_archive.ROUTES,
            *admin_retention.ROUTES,
            *billing.ROUTES,
            *support.ROUTES,
            Route("/healthz", ops.healthz, methods=["GET"]),
            Route("/readyz", ops.readyz, methods=["GET"]),
            Route("/metrics", ops.metrics_page, methods=["GET"]),
            Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
        ],
        middleware=[
            Middleware(SecurityHeadersMiddleware),
            Middleware(billing.SuspendedTenantGuard),
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
