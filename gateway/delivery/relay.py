"""SMTP to a next hop: the client connection (TLS modes, AUTH), the transaction with
per-recipient results, and a small pool of reusable connections to one smarthost
(``settings.relay`` or a tenant's ``relay``).

aiosmtplib's exceptions stop here: a failed connection or a 4xx is a
:class:`TransientError` (or a 4xx :class:`Reply`), a 5xx a :class:`Reply` that the
delivery worker turns into a bounce.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import ssl

import aiosmtplib

from core.config.settings import Settings
from core.config.values import parse_hostport
from core.errors import ConfigError, TransientError
from gateway.delivery.streamed import Payload, Streamed, send_data

log = logging.getLogger("sealmail.gateway.relay")


class TlsUnavailable(TransientError):
    """The next hop cannot give verified TLS (no STARTTLS, a certificate that does not
    verify, a TLS error): mail that requires it must not be sent on this connection."""


@dataclasses.dataclass(frozen=True)
class Reply:
    code: int
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.text}".strip()

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300

    @property
    def permanent(self) -> bool:
        return self.code >= 500


def _reply(err: aiosmtplib.SMTPResponseException) -> Reply:
    return Reply(err.code, " ".join(str(err.message).split())[:450])


def tls_context(settings: Settings, verify: bool) -> ssl.SSLContext:
    """The context for STARTTLS to a next hop. ``verify``: system CAs plus
    ``relay_tls_ca_file``, hostname checked; else encrypt and accept any certificate
    (Postfix "may"). Both show ``relay_tls_client_cert`` when one is configured."""
    ctx = ssl.create_default_context()
    if verify:
        if settings.relay_tls_ca_file:
            try:
                ctx.load_verify_locations(cafile=settings.relay_tls_ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"relay_tls_ca_file: {exc}") from exc
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if settings.relay_tls_client_cert:
        try:
            ctx.load_cert_chain(
                settings.relay_tls_client_cert, settings.relay_tls_client_key or None
            )
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"relay_tls_client_cert: {exc}") from exc
    return ctx


async def open_client(
    settings: Settings,
    host: str,
    port: int,
    tls: str,
    *,
    server_name: str | None = None,
    login: bool = False,
) -> aiosmtplib.SMTP:
    """A connected, greeted client. ``tls``: ``none``; ``opportunistic`` (STARTTLS when
    offered, any certificate); ``required`` (STARTTLS with the default checks, an error
    otherwise); ``verified`` (STARTTLS with a certificate valid for ``server_name``, else
    :class:`TlsUnavailable`). Raises aiosmtplib/OS errors for the caller to translate."""
    name = server_name or host
    client = aiosmtplib.SMTP(
        hostname=host,
        port=port,
        timeout=settings.relay_timeout,
        start_tls=False,
        local_hostname=settings.smtp_hostname,
    )
    await client.connect()
    try:
        await client.ehlo()
        if tls == "verified":
            if not client.supports_extension("starttls"):
                raise TlsUnavailable(f"{name}:{port} does not offer STARTTLS")
            try:
                await client.starttls(
                    server_hostname=name, tls_context=tls_context(settings, verify=True)
                )
            except (ssl.SSLError, ssl.CertificateError, aiosmtplib.SMTPException) as exc:
                # aiosmtplib wraps the handshake's SSL error; any failure: no verified channel
                raise TlsUnavailable(f"{name}:{port}: TLS failed: {exc}") from exc
            if client.get_transport_info("ssl_object") is None:
                raise TlsUnavailable(f"{name}:{port}: no TLS after STARTTLS")
        elif tls == "required":
            await client.starttls(
                server_hostname=name, tls_context=tls_context(settings, verify=True)
            )
        elif tls == "opportunistic" and client.supports_extension("starttls"):
            try:
                await client.starttls(
                    server_hostname=name, tls_context=tls_context(settings, verify=False)
                )
            except (ssl.SSLError, aiosmtplib.SMTPException) as exc:
                if login and settings.relay_username:
                    raise  # never a password over a connection that failed to encrypt
                # Postfix "may": a failed handshake means trying again in clear, not waiting
                log.info("%s:%d: STARTTLS failed (%s); again without TLS", name, port, exc)
                client.close()
                return await open_client(settings, host, port, "none", server_name=server_name)
        if login and settings.relay_username:
            await client.login(settings.relay_username, settings.relay_password.reveal())
    except BaseException:
        client.close()
        raise
    return client


async def quit_client(client: aiosmtplib.SMTP) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.quit(), 5)
    client.close()


class RelayPool:
    """Up to ``size`` open connections to one smarthost (``hop``, default the global
    ``relay``), reused between transactions. AUTH (``relay_username``) is used only
    towards the global relay: a tenant's own next hop never gets our credentials."""

    def __init__(self, settings: Settings, size: int = 4, hop: str | None = None) -> None:
        hop = settings.relay if hop is None else hop
        if hop == "mx":
            raise ConfigError("relay = 'mx' is served by gateway.delivery.nexthop.NextHops")
        self.settings = settings
        self.hop = hop
        self.host, self.port = parse_hostport(hop)
        self.login = hop == settings.relay
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots = asyncio.Semaphore(max(1, size))

    async def _connect(self) -> aiosmtplib.SMTP:
        return await open_client(
            self.settings, self.host, self.port, self.settings.relay_tls, login=self.login
        )

    def verified_context(self) -> ssl.SSLContext:
        """System CAs plus ``relay_tls_ca_file``; the hostname checked is the relay host."""
        return tls_context(self.settings, verify=True)

    async def _connect_verified(self) -> aiosmtplib.SMTP:
        """A fresh connection upgraded with STARTTLS and a verified certificate, or
        :class:`TlsUnavailable`. Never pooled: the pool's connections may be unverified."""
        return await open_client(self.settings, self.host, self.port, "verified", login=self.login)

    async def send_verified(
        self, mail_from: str, rcpts: list[str], data: Payload
    ) -> dict[str, Reply]:
        """Like :meth:`send`, but only over STARTTLS with a certificate that verifies,
        whatever ``relay_tls`` says; otherwise :class:`TlsUnavailable` and nothing is sent."""
        async with self._slots:
            try:
                client = await self._connect_verified()
            except (TlsUnavailable, ConfigError):
                raise
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                raise TransientError(f"relay {self.host}:{self.port}: {exc}") from exc
            try:
                results = await transaction(client, mail_from, rcpts, data)
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                client.close()
                raise TransientError(f"relay {self.host}:{self.port}: {exc}") from exc
            await quit_client(client)
            return results

    async def send(self, mail_from: str, rcpts: list[str], data: Payload) -> dict[str, Reply]:
        """One transaction; a reply per recipient. Raises :class:`TransientError` when
        the relay cannot be reached or the connection fails midway."""
        async with self._slots:
            client = self._idle.pop() if self._idle else None
            try:
                if client is None or not client.is_connected:
                    client = await self._connect()
                results = await transaction(client, mail_from, rcpts, data)
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                if client is not None:
                    client.close()
                raise TransientError(f"relay {self.host}:{self.port}: {exc}") from exc
            self._idle.append(client)
            return results

    async def close(self) -> None:
        while self._idle:
            await quit_client(self._idle.pop())


async def transaction(
    client: aiosmtplib.SMTP, mail_from: str, rcpts: list[str], data: Payload
) -> dict[str, Reply]:
    options = ["SMTPUTF8"] if _needs_utf8(mail_from, rcpts) else []
    try:
        await client.mail(mail_from, options=options, encoding="utf-8")
    except aiosmtplib.SMTPSenderRefused as err:
        await client.rset()
        return dict.fromkeys(rcpts, _reply(err))
    results: dict[str, Reply] = {}
    accepted: list[str] = []
    for rcpt in rcpts:
        try:
            await client.rcpt(rcpt, encoding="utf-8")
            accepted.append(rcpt)
        except aiosmtplib.SMTPRecipientRefused as err:
            results[rcpt] = _reply(err)
    if not accepted:
        await client.rset()
        return results
    try:
        if isinstance(data, Streamed):
            response = await send_data(client, data)
        else:
            response = await client.data(data)
        reply = Reply(response.code, " ".join(response.message.split())[:450])
    except aiosmtplib.SMTPDataError as err:
        reply = _reply(err)
        await client.rset()
    for rcpt in accepted:
        results[rcpt] = reply
    return results


def _needs_utf8(mail_from: str, rcpts: list[str]) -> bool:
    return not all(a.isascii() for a in [mail_from, *rcpts])
