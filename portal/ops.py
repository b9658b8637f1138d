"""Operators' endpoints: liveness, readiness (database, archive, outbox), and the tenant's
brand stylesheet (the CSP forbids inline styles, so the color comes as a file)."""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from branding.templating import safe_color
from core import outbox
from core.models import Tenant
from portal.state import portal

log = logging.getLogger("sealmail.portal")
CHECK_TIMEOUT = 5.0


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


async def readyz(request: Request) -> Response:
    st = portal(request)
    services = st.services
    checks: dict[str, str] = {}

    async def database() -> None:
        if not await services.db.ping():
            raise RuntimeError("ping failed")

    async def archive() -> None:
        await asyncio.to_thread(services.store.check)

    async def queue() -> None:
        async with services.db.session() as s:
            await outbox.depth(s)

    for name, check in (("database", database), ("archive", archive), ("outbox", queue)):
        try:
            await asyncio.wait_for(check(), CHECK_TIMEOUT)
            checks[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - readiness reports, never raises
            log.warning("portal: readiness check %s failed: %s", name, type(exc).__name__)
            checks[name] = "unavailable"
    failed = [name for name, state in checks.items() if state != "ok"]
    body = {"status": "unavailable" if failed else "ok", "checks": checks, "failed": failed}
    return JSONResponse(body, status_code=503 if failed else 200)


async def brand_css(request: Request) -> Response:
    st = portal(request)
    tenant_id = request.path_params["tenant_id"][:40]
    async with st.services.db.session() as s:
        tenant = await s.get(Tenant, tenant_id)
    color = safe_color(tenant.brand_color if tenant else "")
    return Response(
        f":root {{ --brand: {color}; }}\n",
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=300"},
    )
