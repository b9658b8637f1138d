"""The next hop (``settings.relay``): a small pool of reusable aiosmtplib connections and
one transaction per call, with per-recipient results.

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

from core.config import Settings, parse_hostport
from core.errors import ConfigError, TransientError

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


class RelayPool:
    """Up to ``size`` open connections to the relay, reused between transactions."""

    def __init__(self, settings: Settings, size: int = 4) -> None:
        if settings.relay == "mx":
            raise ConfigError("relay = 'mx' (direct delivery by DNS) is not supported yet")
        self.settings = settings
        self.host, self.port = parse_hostport(settings.relay)
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots = asyncio.Semaphore(max(1, size))

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        client = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            timeout=s.relay_timeout,
            start_tls=False,
            local_hostname=s.smtp_hostname,
        )
        await client.connect()
        if s.relay_tls != "none" and (
            s.relay_tls == "required" or client.supports_extension("starttls")
        ):
            if s.relay_tls == "required":
                await client.starttls(tls_context=ssl.create_default_context())
            else:  # opportunistic: encrypt, accept any certificate (Postfix "may")
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                await client.starttls(tls_context=ctx)
        if s.relay_username:
            await client.login(s.relay_username, s.relay_password.reveal())
        return client

    def verified_context(self) -> ssl.SSLContext:
        """System CAs plus ``relay_tls_ca_file``; the hostname checked is the relay host."""
        ctx = ssl.create_default_context()
        if self.settings.relay_tls_ca_file:
            try:
                ctx.load_verify_locations(cafile=self.settings.relay_tls_ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"relay_tls_ca_file: {exc}") from exc
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx

    async def _connect_verified(self) -> aiosmtplib.SMTP:
        """A fresh connection upgraded with STARTTLS and a verified certificate, or
        :class:`TlsUnavailable`. Never pooled: the pool's connections may be unverified."""
        s = self.settings
        client = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            timeout=s.relay_timeout,
            start_tls=False,
            local_hostname=s.smtp_hostname,
        )
        await client.connect()
        try:
            await client.ehlo()
            if not client.supports_extension("starttls"):
                raise TlsUnavailable(f"relay {self.host}:{self.port} does not offer STARTTLS")
            try:
                await client.starttls(
                    server_hostname=self.host, tls_context=self.verified_context()
                )
            except (ssl.SSLError, ssl.CertificateError) as exc:
                raise TlsUnavailable(f"relay {self.host}:{self.port}: TLS failed: {exc}") from exc
            except aiosmtplib.SMTPException as exc:
                # aiosmtplib wraps the handshake's SSL error; any STARTTLS failure means
                # no verified channel
                raise TlsUnavailable(f"relay {self.host}:{self.port}: TLS failed: {exc}") from exc
            if client.get_transport_info("ssl_object") is None:
                raise TlsUnavailable(f"relay {self.host}:{self.port}: no TLS after STARTTLS")
            if s.relay_username:
                await client.login(s.relay_username, s.relay_password.reveal())
        except BaseException:
            client.close()
            raise
        return client

    async def send_verified(
        self, mail_from: str, rcpts: list[str], data: bytes
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
                results = await _transaction(client, mail_from, rcpts, data)
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                client.close()
                raise TransientError(f"relay {self.host}:{self.port}: {exc}") from exc
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.quit(), 5)
            client.close()
            return results

    async def send(self, mail_from: str, rcpts: list[str], data: bytes) -> dict[str, Reply]:
        """One transaction; a reply per recipient. Raises :class:`TransientError` when
        the relay cannot be reached or the connection fails midway."""
        async with self._slots:
            client = self._idle.pop() if self._idle else None
            try:
                if client is None or not client.is_connected:
                    client = await self._connect()
                results = await _transaction(client, mail_from, rcpts, data)
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                if client is not None:
                    client.close()
                raise TransientError(f"relay {self.host}:{self.port}: {exc}") from exc
            self._idle.append(client)
            return results

    async def close(self) -> None:
        while self._idle:
            client = self._idle.pop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.quit(), 5)
            client.close()


async def _transaction(
    client: aiosmtplib.SMTP, mail_from: str, rcpts: list[str], data: bytes
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
