"""``sealmail serve``: the SMTP gateway, the portal (uvicorn) and the workers in one process,
or one role per process. SIGTERM drains: new SMTP sessions get 421, open transactions
finish, leases are given back, and the process exits 0."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import uvicorn

from core.config.settings import Settings
from core.config.values import parse_hostport
from core.db import MIGRATIONS_DIR, current_revision
from core.errors import ConfigError
from core.services import Services

log = logging.getLogger("sealmail.serve")
ROLES = ("all", "smtp", "portal", "worker")


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: ``serve`` owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def check_schema(settings: Settings) -> None:
    """Refuse to start on a database that is not migrated to this version's schema."""
    try:
        current = current_revision(settings.database_url)
    except Exception as exc:  # noqa: BLE001 - one line for the operator
        raise ConfigError(f"cannot open the database: {type(exc).__name__}: {exc}") from None
    if current != head_revision():
        raise ConfigError(
            f"database schema is at {current or 'nothing'}, this version needs "
            f"{head_revision()}: run 'sealmail migrate'"
        )


def portal_tls(settings: Settings) -> dict[str, str]:
    """uvicorn's TLS arguments when the portal serves HTTPS itself; the files are checked
    here, so a wrong path or a key that does not match is one line at start."""
    if not settings.portal_tls_cert:
        return {}
    import ssl

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
            settings.portal_tls_cert, settings.portal_tls_key
        )
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"portal_tls_cert/portal_tls_key: cannot use {settings.portal_tls_cert} with "
            f"{settings.portal_tls_key} ({getattr(exc, 'strerror', None) or exc})"
        ) from None
    return {"ssl_certfile": settings.portal_tls_cert, "ssl_keyfile": settings.portal_tls_key}


def plain_http_warning(settings: Settings) -> str | None:
    """The warning for a portal whose links are ``http://`` to a name that is not loopback:
    its ``__Host-`` cookies cannot work there, so nobody could sign in."""
    parts = urlsplit(settings.portal_base_url)
    host = (parts.hostname or "").lower()
    if parts.scheme != "http" or host == "localhost" or host.endswith(".localhost"):
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass
    return (
        f"warning: portal_base_url is {settings.portal_base_url}: browsers will not keep the "
        "portal's secure cookies over plain HTTP, so recipients cannot sign in. Serve the "
        "portal over HTTPS (portal_tls_cert and portal_tls_key, or a reverse proxy) and use "
        "an https:// portal_base_url (docs/deploy/https.md)."
    )


async def _serve_http(
    app: Any,
    listen: str,
    name: str,
    tasks: list[asyncio.Task[None]],
    tls: dict[str, str] | None = None,
) -> _Uvicorn:
    """Start uvicorn for ``app`` on ``listen``; returns once it is listening."""
    host, port = parse_hostport(listen)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        server_header=False,
        proxy_headers=False,
        **(tls or {}),
    )
    server = _Uvicorn(config)
    tasks.append(asyncio.create_task(server.serve(), name=name))
    while not server.started:
        if tasks[-1].done():
            tasks[-1].result()
            raise ConfigError(f"{name} could not listen on {listen}")
        await asyncio.sleep(0.05)
    return server


async def serve(
    settings: Settings, role: str = "all", announce: Callable[[str], None] = print
) -> None:
    """Run until SIGTERM or SIGINT, then drain and return."""
    if role not in ROLES:
        raise ConfigError(f"unknown role {role!r}")
    services = Services.open(settings)
    # a KMS root is reached here, once: missing/disabled → ConfigError, unreachable → Transient
    await asyncio.to_thread(services.root_key.check)
    # the archive as configured (bucket, access, Object Lock): ConfigError in one line if not
    await asyncio.to_thread(services.verify_store)
    # the dunning schedule file is read here too, not first at the worker's hourly billing
    # run: a bad one stops the program with one line at start (SPEC §2)
    from billing_hooks.schedule import load_schedule

    load_schedule(settings.billing_schedule_file)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    from sealmail.workers import FanOutEvent, WorkerProcesses, process_count

    wakeup = FanOutEvent()
    extra: WorkerProcesses | None = None
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    gateway = None
    http_servers: list[_Uvicorn] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        if role in ("all", "smtp"):
            from gateway.intake.handler import build_gateway

            gateway = build_gateway(services, wakeup=wakeup)
            host, port = await gateway.start()
            announce(f"smtp    listening on {host}:{port}")
        if role in ("all", "portal"):
            from portal.app import create_app

            tls = portal_tls(settings)
            warning = plain_http_warning(settings)
            if warning:
                log.warning("%s", warning)
                announce(warning)
            app = create_app(settings, services)
            http_servers.append(
                await _serve_http(app, settings.portal_listen, "portal", tasks, tls)
            )
            announce(
                f"portal  listening on {settings.portal_listen}"
                f"{' (HTTPS)' if tls else ''} ({settings.portal_base_url})"
            )
        if settings.metrics_listen:
            # counters live in this process; any role (the portal's own /metrics answers
            # only with metrics_token set)
            from portal.ops import metrics_app

            app = metrics_app(services)
            http_servers.append(await _serve_http(app, settings.metrics_listen, "metrics", tasks))
            announce(f"metrics listening on {settings.metrics_listen} (/metrics)")
        if role in ("all", "worker"):
            from gateway.scheduler import run_scheduler
            from gateway.worker import run_worker

            # one process: the worker runs here; more: they all run beside this one, which
            # keeps its loop for SMTP clients, the portal and the scheduler
            count = process_count(settings)
            if count == 1:
                tasks.append(
                    asyncio.create_task(run_worker(services, stop, wakeup=wakeup), name="worker")
                )
            else:
                extra = WorkerProcesses(settings, count, wakeup)
                extra.start()
            tasks.append(asyncio.create_task(run_scheduler(services, stop), name="scheduler"))
            announce(
                f"worker  delivering to {settings.relay} "
                f"({count} process{'es' if count > 1 else ''})"
            )
        announce("sealmail is running; SIGTERM or Ctrl-C stops it")

        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for t in tasks:
            if t.done() and t.exception() is not None:
                log.error("component %s failed: %r", t.get_name(), t.exception())
        stop.set()
        stopper.cancel()
        log.info("draining")
    finally:
        stop.set()
        if extra is not None:
            extra.terminate()
        if gateway is not None:
            await gateway.stop()
        if extra is not None:
            await extra.stop()
        for server in http_servers:
            server.should_exit = True
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=30)
            for t in pending:
                t.cancel()
        await services.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    log.info("stopped")
