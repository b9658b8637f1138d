"""aiosmtpd's SMTP protocol, adjusted for a gateway that must never lose mail:

- DATA is read in bulk chunks (:mod:`gateway.intake.data_reader`), not line by line, and handed
  on as it is decoded (the handler seals it while it arrives: memory does not grow with
  the size of the message);
- AUTH PLAIN/LOGIN check credentials asynchronously (the database, Argon2 off the loop);
- session limits: commands per session, concurrent sessions, idle timeout;
- graceful drain: new sessions and new transactions get 421, open transactions finish.
"""

from __future__ import annotations

import asyncio
import binascii
import logging
from base64 import b64decode
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiosmtpd.smtp import SMTP, AuthResult, Envelope

from core.addresses import is_source_route, routing_problem
from core.metrics import metrics
from gateway.intake import replies
from gateway.intake.data_reader import DataDecoder, DataState

log = logging.getLogger("sealmail.gateway.smtp")

DATA_CHUNK = 256 * 1024
DATA_BUFFER_LIMIT = 1024 * 1024
MAX_AUTH_FAILURES = 3


class GatewayEnvelope(Envelope):
    """One transaction; ``tenant_id`` is set once the sender is known (``None`` until
    DATA for a connector); ``deny`` holds a refusal to give at RCPT."""

    def __init__(self) -> None:
        super().__init__()
        self.tenant_id: str | None = None
        self.deny: str | None = None
        # set when the sender is not one of the tenant's own (a journal report from
        # Exchange): only this address, the tenant's journal address, may be a recipient
        self.journal_only: str = ""
        # how the tenant was identified (gateway.onboarding: auth, network, token, journal)
        self.identified_by: str = ""


class IncomingData(Protocol):
    """One message while its DATA streams in (made by the handler's ``begin_data``)."""

    async def write(self, data: bytes) -> None: ...

    async def finish(self) -> str:
        """The reply once all data is in (``250`` only when stored durably)."""
        ...

    async def abort(self) -> None: ...

    def abort_nowait(self) -> None: ...


class SessionRegistry(Protocol):
    draining: bool

    def admit(self, proto: GatewaySMTP) -> str | None: ...

    def forget(self, proto: GatewaySMTP) -> None: ...


class GatewaySMTP(SMTP):
    def __init__(
        self,
        handler: Any,
        *,
        registry: SessionRegistry,
        max_message_size: int,
        max_commands: int,
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, data_size_limit=None, enable_SMTPUTF8=True, **kwargs)
        self.registry = registry
        self.max_message_size = max_message_size
        self.max_commands = max_commands
        self.auth_tenant_id: str | None = None
        self.busy = False
        self._commands = 0
        self._auth_failures = 0
        self._admitted = False
        self._refusal: str | None = None
        # why the path of the MAIL or RCPT being handled asks us to route mail onwards
        self.path_problem: str | None = None
        for name, method in list(self._smtp_methods.items()):
            self._smtp_methods[name] = self._guarded(name, method)

    # --- connection life ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._admitted:  # not again after STARTTLS
            self._admitted = True
            self._refusal = self.registry.admit(self)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self.registry.forget(self)
        super().connection_lost(error)

    async def _handle_client(self) -> None:
        if self._refusal:
            await self.push(self._refusal)
            self.close()
            return
        await super()._handle_client()

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd drops a source route and the quotes of a local part; the path as the
        client sent it is judged here, for the handler's MAIL and RCPT hooks."""
        address, params = super()._getaddr(arg)
        self.path_problem = None
        if address:
            if is_source_route(arg):
                self.path_problem = replies.SOURCE_ROUTE_REFUSED
            else:
                self.path_problem = routing_problem(address)
        return address, params

    def _create_envelope(self) -> GatewayEnvelope:
        return GatewayEnvelope()

    @property
    def in_transaction(self) -> bool:
        return self.envelope is not None and self.envelope.mail_from is not None

    @property
    def client_ip(self) -> str:
        peer = self.session.peer if self.session else None
        return str(peer[0]) if isinstance(peer, tuple) and peer else ""

    async def push(self, status: Any) -> None:
        """Every reply goes through here: counted by code for ``/metrics``."""
        await super().push(status)
        metrics().reply_sent(
            status if isinstance(status, str) else status.decode("ascii", "replace")
        )

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    async def say_goodbye(self, reply: str) -> None:
        """Send an unsolicited 421 and close (drain, limits)."""
        if self.transport is None or self.transport.is_closing():
            return
        try:
            await self.push(reply)
        except (ConnectionError, RuntimeError):
            pass
        self.close()

    def _guarded(
        self, name: str, method: Callable[[Any], Awaitable[None]]
    ) -> Callable[[Any], Awaitable[None]]:
        async def run(arg: Any) -> None:
            self._commands += 1
            if self.max_commands and self._commands > self.max_commands:
                await self.say_goodbye(replies.REPLY_TOO_MANY_COMMANDS)
                return
            if self.registry.draining and name != "QUIT" and not self.in_transaction:
                await self.say_goodbye(replies.REPLY_SHUTTING_DOWN)
                return
            self.busy = True
            try:
                await method(arg)
            finally:
                self.busy = False
            if self.registry.draining and not self.in_transaction:
                await self.say_goodbye(replies.REPLY_SHUTTING_DOWN)

        return run

    # --- AUTH ---------------------------------------------------------------------------

    async def _check_login(self, login: bytes, password: bytes) -> AuthResult:
        result = await self.event_handler.authenticate(self, login, password)
        if result is True:
            return AuthResult(success=True, auth_data=login)
        if result is False:
            self._auth_failures += 1
            if self._auth_failures >= MAX_AUTH_FAILURES:
                await self.say_goodbye(replies.REPLY_AUTH_TOO_MANY)
                return AuthResult(success=False, handled=True)
            return AuthResult(success=False, handled=False, message=replies.REPLY_AUTH_FAILED)
        return AuthResult(success=False, handled=False, message=str(result))

    async def _decode_b64(self, text: str) -> bytes | None:
        try:
            return b64decode(text.encode(), validate=True)
        except (binascii.Error, ValueError, UnicodeEncodeError):
            await self.push("501 5.5.2 cannot decode base64")
            return None

    async def auth_PLAIN(self, _: Any, args: list[str]) -> AuthResult:
        if len(args) == 1:
            blob = await self.challenge_auth("")
            if not isinstance(blob, bytes):
                return AuthResult(success=False, handled=True)
        else:
            decoded = await self._decode_b64(args[1])
            if decoded is None:
                return AuthResult(success=False, handled=True)
            blob = decoded
        parts = blob.split(b"\x00")
        if len(parts) != 3:
            await self.push("501 5.5.2 cannot split auth value")
            return AuthResult(success=False, handled=True)
        return await self._check_login(parts[1], parts[2])

    async def auth_LOGIN(self, _: Any, args: list[str]) -> AuthResult:
        if len(args) == 1:
            login = await self.challenge_auth(self.AuthLoginUsernameChallenge)
            if not isinstance(login, bytes):
                return AuthResult(success=False, handled=True)
        else:
            decoded = await self._decode_b64(args[1])
            if decoded is None:
                return AuthResult(success=False, handled=True)
            login = decoded
        password = await self.challenge_auth(self.AuthLoginPasswordChallenge)
        if not isinstance(password, bytes):
            return AuthResult(success=False, handled=True)
        return await self._check_login(login, password)

    # --- DATA ---------------------------------------------------------------------------

    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed():
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 5.5.1 need RCPT command")
            return
        if arg:
            await self.push("501 5.5.4 syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        incoming: IncomingData = self.event_handler.begin_data(self, self.session, self.envelope)
        try:
            decoder = await self._read_data(incoming)
            if decoder.state is DataState.NOMINAL:
                status = await incoming.finish()
            else:
                await incoming.abort()
                status = _DATA_REFUSALS[decoder.state]
        except BaseException:
            incoming.abort_nowait()  # cancelled (connection lost): nothing may be awaited
            raise
        finally:
            self._set_post_data_state()
        await self.push(status)

    async def _read_data(self, incoming: IncomingData) -> DataDecoder:
        """Read DATA to its end, streaming what is decoded into ``incoming`` as it comes;
        after a refusal (too big, line too long, bare newline) the rest is read and
        thrown away, so the reply lands where the client expects it."""
        decoder = DataDecoder(self.max_message_size)
        reader = self._reader
        # A bigger buffer while DATA streams in, so the transport is not paused every
        # two kilobytes (the reader's limit is the command line limit otherwise).
        saved = reader._limit  # type: ignore[attr-defined]
        reader._limit = DATA_BUFFER_LIMIT  # type: ignore[attr-defined]
        aborted = False
        try:
            while True:
                chunk = await reader.read(DATA_CHUNK)
                if not chunk:
                    raise ConnectionResetError("connection closed during DATA")
                self._reset_timeout()
                rest = decoder.feed(chunk)
                if decoder.state is DataState.NOMINAL:
                    for piece in decoder.take():
                        await incoming.write(piece)
                elif not aborted:
                    aborted = True
                    await incoming.abort()
                if rest is not None:
                    if rest:  # pipelined commands after the terminator: give them back
                        reader._buffer[0:0] = rest  # type: ignore[attr-defined]
                    return decoder
        finally:
            reader._limit = saved  # type: ignore[attr-defined]


_DATA_REFUSALS = {
    DataState.TOO_BIG: replies.REPLY_TOO_BIG,
    DataState.TOO_LONG: replies.REPLY_LINE_TOO_LONG,
    DataState.BARE_NEWLINE: replies.REPLY_BARE_NEWLINE,
}
