"""The listening socket and the set of live sessions: start, limits, graceful drain."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from pathlib import Path
from typing import Any

from core.config.settings import Settings
from core.config.values import parse_hostport
from core.errors import ConfigError
from gateway.intake import replies
from gateway.intake.smtp_server import GatewaySMTP

log = logging.getLogger("sealmail.gateway")


def tls_context(settings: Settings) -> ssl.SSLContext:
    cert, key = Path(settings.smtp_tls_cert), Path(settings.smtp_tls_key)
    if not cert.is_file() or not key.is_file():
        raise ConfigError(
            f"smtp_tls_cert {cert} or smtp_tls_key {key} not found (run 'sealmail init')"
        )
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(str(cert), str(key))
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"smtp_tls_cert/smtp_tls_key cannot be loaded: {exc}") from None
    return ctx


class Gateway:
    """One SMTP listener. ``start()`` binds (port 0 picks a free one) and returns the
    address; ``stop()`` drains: new sessions and new transactions get 421, transactions
    in progress finish (up to ``drain_timeout``), then everything closes."""

    def __init__(self, settings: Settings, handler: Any) -> None:
        self.settings = settings
        self.handler = handler
        self.draining = False
        self.sessions: set[GatewaySMTP] = set()
        self._server: asyncio.Server | None = None
        self._tls: ssl.SSLContext | None = None
        self._all_gone = asyncio.Event()

    # SessionRegistry
    def admit(self, proto: GatewaySMTP) -> str | None:
        if self.draining:
            return replies.REPLY_SHUTTING_DOWN
        if (
            self.settings.smtp_max_sessions
            and len(self.sessions) >= self.settings.smtp_max_sessions
        ):
            return replies.REPLY_TOO_MANY_SESSIONS
        self.sessions.add(proto)
        return None

    def forget(self, proto: GatewaySMTP) -> None:
        self.sessions.discard(proto)
        if not self.sessions:
            self._all_gone.set()

    def _protocol(self) -> GatewaySMTP:
        s = self.settings
        return GatewaySMTP(
            self.handler,
            registry=self,
            max_message_size=s.smtp_max_message_size,
            max_commands=s.smtp_max_commands,
            hostname=s.smtp_hostname,
            ident="sealmail ESMTP",
            tls_context=self._tls,
            timeout=s.smtp_timeout,
            auth_require_tls=s.smtp_auth_require_tls,
            loop=asyncio.get_running_loop(),
        )

    async def start(self) -> tuple[str, int]:
        host, port = parse_hostport(self.settings.smtp_listen)
        self._tls = tls_context(self.settings)
        self._server = await asyncio.get_running_loop().create_server(
            self._protocol, host=host, port=port, reuse_address=True
        )
        bound = self._server.sockets[0].getsockname()
        log.info("SMTP listening on %s:%d", bound[0], bound[1])
        return str(bound[0]), int(bound[1])

    async def stop(self, drain_timeout: float = 30) -> None:
        if self._server is None:
            return
        self.draining = True
        for proto in list(self.sessions):
            if not proto.busy and not proto.in_transaction:
                await proto.say_goodbye(replies.REPLY_SHUTTING_DOWN)
        if self.sessions:
            self._all_gone.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all_gone.wait(), drain_timeout)
        self._server.close()
        for proto in list(self.sessions):
            proto.close()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), 5)
        self._server = None
        await asyncio.sleep(0)  # let connection_lost callbacks run
