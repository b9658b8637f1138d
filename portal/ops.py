"""Operators' endpoints: liveness, readiness (database, archive, outbox, root key (KMS
answers), relay, and each
tenant's own next hop, reported without failing readiness), Prometheus
metrics, and the tenant's brand stylesheet (the CSP forbids inline styles, so the color
comes as a file).

``/metrics`` needs no session and shows no addresses or content: counts by tenant id,
disposition, kind and reply code (:mod:`core.metrics`). It is not public: with
``metrics_token`` set it asks for ``Authorization: Bearer <token>`` (on every listener);
without one the portal answers 404 there, and :func:`metrics_app` serves it on
``metrics_listen`` (any role), an address the operator keeps private. No exception is made
for loopback peers: behind a reverse proxy on the same host every request comes from
loopback.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from sqlalchemy import select
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from core import outbox
from core.config.settings import Secret
from core.config.values import parse_hostport
from core.metrics import CONTENT_TYPE, metrics
from core.models import Tenant
from core.services import Services
from portal.security import SecuredStarlette
from portal.state import portal

log = logging.getLogger("sealmail.portal")
CHECK_TIMEOUT = 5.0
RELAY_CONNECT_TIMEOUT = 2.0
RELAY_CACHE_SECONDS = 5.0  # a busy probe must not hammer the relay with connections
_relay_seen: dict[str, tuple[float, bool]] = {}


def _services(request: Request) -> Services:
    state = request.app.state
    return state.portal.services if hasattr(state, "portal") else state.services


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


async def readyz(request: Request) -> Response:
    services = _services(request)
    checks: dict[str, str] = {}

    async def database() -> None:
        if not await services.db.ping():
            raise RuntimeError("ping failed")

    async def archive() -> None:
        await asyncio.to_thread(services.store.check)

    async def queue() -> None:
        async with services.db.session() as s:
            await outbox.depth(s)

    async def root_key() -> None:
        await _cached("root_key", lambda: asyncio.to_thread(services.root_key.probe))

    checks_to_run = (
        ("database", database),
        ("archive", archive),
        ("outbox", queue),
        ("root_key", root_key),
    )
    for name, check in checks_to_run:
        try:
            await asyncio.wait_for(check(), CHECK_TIMEOUT)
            checks[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - readiness reports, never raises
            log.warning("portal: readiness check %s failed: %s", name, type(exc).__name__)
            checks[name] = "unavailable"
    checks["relay"] = await relay_state(services.settings.relay)
    failed = [name for name, state in checks.items() if state not in ("ok", "mx")]
    body: dict[str, object] = {
        "status": "unavailable" if failed else "ok",
        "checks": checks,
        "failed": failed,
    }
    try:
        hops = await asyncio.wait_for(tenant_next_hops(services), CHECK_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - reported, never raised
        log.warning("portal: tenant next hops not checked: %s", type(exc).__name__)
        hops = {}
    if hops:
        # a tenant's own next hop (its Microsoft 365 endpoint) being down delays that
        # tenant's mail only: shown here, but the gateway stays ready for everyone else
        body["next_hops"] = hops
        body["degraded"] = sorted(h for h, state in hops.items() if state != "ok")
    return JSONResponse(body, status_code=503 if failed else 200)


_probe_seen: dict[str, tuple[float, BaseException | None]] = {}


async def _cached(name: str, probe: Callable[[], Awaitable[object]]) -> None:
    """Run ``probe`` at most every RELAY_CACHE_SECONDS (a KMS root is a paid network call
    per probe); within that, repeat its last outcome."""
    seen = _probe_seen.get(name)
    if seen is not None and time.monotonic() - seen[0] < RELAY_CACHE_SECONDS:
        if seen[1] is not None:
            raise seen[1]
        return
    try:
        await probe()
    except Exception as exc:
        _probe_seen[name] = (time.monotonic(), exc)
        raise
    _probe_seen[name] = (time.monotonic(), None)


async def tenant_next_hops(services: Services) -> dict[str, str]:
    """Each distinct per-tenant next hop (``host:port``) and whether it answers now."""
    async with services.db.session() as s:
        relays = (
            (await s.execute(select(Tenant.relay).where(Tenant.relay != "").distinct()))
            .scalars()
            .all()
        )
    hops = sorted({r for r in relays if r and r != "mx" and r != services.settings.relay})
    probe = asyncio.Semaphore(20)

    async def check(hop: str) -> str:
        async with probe:
            return await relay_state(hop)

    states = await asyncio.gather(*(check(h) for h in hops))
    return dict(zip(hops, states, strict=True))


async def relay_state(relay: str) -> str:
    """``ok`` when a TCP connection to the global relay opens within a short timeout,
    else ``unavailable``; ``mx`` (direct delivery: there is no one host to check).
    The answer is kept a few seconds."""
    if relay == "mx":
        return "mx"
    t = time.monotonic()
    seen = _relay_seen.get(relay)
    if seen is not None and t - seen[0] < RELAY_CACHE_SECONDS:
        return "ok" if seen[1] else "unavailable"
    host, port = parse_hostport(relay)
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port), RELAY_CONNECT_TIMEOUT
        )
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
        ok = True
    except (OSError, TimeoutError) as exc:
        log.warning("portal: relay %s not reachable: %s", relay, type(exc).__name__)
        ok = False
    _relay_seen[relay] = (time.monotonic(), ok)
    return "ok" if ok else "unavailable"


def bearer_matches(request: Request, token: Secret) -> bool:
    """Whether the request carries ``Authorization: Bearer <token>``, compared in constant
    time (digests of equal length, so neither content nor length leaks)."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    want = hashlib.sha256(token.reveal().encode()).digest()
    got = hashlib.sha256(given.strip().encode("utf-8", "replace")).digest()
    return hmac.compare_digest(want, got)


async def metrics_page(request: Request) -> Response:
    """Prometheus text format; the queue gauges are read from the database now."""
    services = _services(request)
    token = services.settings.metrics_token
    if token:
        if not bearer_matches(request, token):
            return PlainTextResponse(
                "metrics need Authorization: Bearer <metrics_token>\n",
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
    elif not getattr(request.app.state, "metrics_listener", False):
        raise HTTPException(404)  # no token: only metrics_listen serves them
    m = metrics()
    try:
        async with services.db.session() as s:
            await asyncio.wait_for(m.refresh_queue(s), CHECK_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - the counters are still worth serving
        log.warning("metrics: queue gauges not refreshed: %s", type(exc).__name__)
    return Response(m.exposition(), media_type=CONTENT_TYPE)


def metrics_app(services: Services) -> Starlette:
    """``/metrics``, ``/healthz`` and ``/readyz`` alone, on ``metrics_listen`` (with the
    portal's response headers all the same)."""
    app = SecuredStarlette(
        routes=[
            Route("/metrics", metrics_page, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
        ]
    )
    app.state.services = services
    app.state.metrics_listener = True
    return app


async def host_allowed(request: Request) -> Response:
    """For a reverse proxy that gets certificates on demand (Caddy's ``on_demand_tls ask``):
    200 for the operator's portal host and every tenant's own portal host, 404 for any other
    name, so nobody can make the proxy request certificates for names we do not serve."""
    st = portal(request)
    name = request.query_params.get("domain", "").strip().lower().rstrip(".")[:253]
    if name and name == (urlsplit(st.settings.portal_base_url).hostname or "").lower():
        return Response("ok\n", media_type="text/plain")
    if name:
        async with st.services.db.session() as s:
            found = await s.execute(select(Tenant.id).where(Tenant.portal_host == name))
            if found.first() is not None:
                return Response("ok\n", media_type="text/plain")
    return Response("unknown host\n", status_code=404, media_type="text/plain")


async def receipt_keys(request: Request) -> Response:
    """The tenants' public receipt-signing keys (``/.well-known/sealmail/receipt-keys``), the
    current and the retired ones (old receipts keep verifying); ``?tenant=ID`` for one
    tenant's. Tenant ids and keys only: no names, nothing else of a tenant."""
    from core.evidence.keys import published

    st = portal(request)
    tenant = request.query_params.get("tenant", "").strip()[:32] or None
    async with st.services.db.session() as s:
        keys = await published(s, tenant)
    return JSONResponse(
        {"type": "sealmail-receipt-keys", "keys": keys},
        headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"},
    )
