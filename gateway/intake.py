"""Intake: the aiosmtpd handler that accepts mail.

Identify the tenant, check its standing and relay rights, store the message sealed and
durably, and only then answer ``250 queued as <id>`` (Postfix's "accept first, filter
after"). No policy work and no third-party network calls happen in the dialogue. Any
failure of our own becomes ``451 4.3.0``, never a 5xx.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from email.utils import formatdate
from typing import Any

from aiosmtpd.smtp import Envelope, Session

from archive.services import Services
from core import accounts
from core.ids import queue_id
from core.models import Message, MessageRecipient, Tenant
from gateway import identity, replies
from gateway.headers import header_value
from gateway.listener import Gateway
from gateway.smtp_server import GatewayEnvelope, GatewaySMTP
from gateway.stamp import has_valid_stamp

log = logging.getLogger("sealmail.gateway.intake")

DISPOSITION_LOOP = "loop"  # carries our valid stamp: relay as it is


class IntakeHandler:
    """aiosmtpd hooks (``handle_EHLO/MAIL/RCPT/DATA``) plus AUTH and error handling."""

    def __init__(self, services: Services, wakeup: asyncio.Event | None = None) -> None:
        self.services = services
        self.settings = services.settings
        self.wakeup = wakeup
        self._stamp_key = services.keyring.stamp_key

    # --- errors -------------------------------------------------------------------------

    async def handle_exception(self, error: Exception) -> str:
        """Replaces aiosmtpd's default (a 5xx with the exception text)."""
        log.error("SMTP session error: %s", type(error).__name__, exc_info=error)
        return replies.REPLY_TEMPFAIL

    # --- EHLO, AUTH ---------------------------------------------------------------------

    async def handle_EHLO(
        self,
        server: GatewaySMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        extra = [f"250-SIZE {self.settings.smtp_max_message_size}", "250-PIPELINING"]
        return responses[:1] + extra + responses[1:]

    async def authenticate(self, server: GatewaySMTP, login: bytes, password: bytes) -> Any:
        """True, False, or a reply to give instead (our own failure)."""
        try:
            user, secret = login.decode("utf-8"), password.decode("utf-8")
        except UnicodeDecodeError:
            return False
        try:
            async with self.services.db.session() as s:
                tenant = await accounts.authenticate_smtp(s, user, secret)
        except Exception as exc:  # noqa: BLE001 - our failure: the client retries
            log.error("AUTH check failed: %s", exc)
            return replies.REPLY_AUTH_TEMPFAIL
        if tenant is None:
            log.info("AUTH failed for %r from %s", user, server.client_ip)
            return False
        server.auth_tenant_id = tenant.id
        return True

    # --- MAIL, RCPT ---------------------------------------------------------------------

    async def handle_MAIL(
        self,
        server: GatewaySMTP,
        session: Session,
        envelope: GatewayEnvelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        size = _size_param(mail_options)
        if size is None:
            return replies.REPLY_BAD_SIZE_PARAM
        if size > self.settings.smtp_max_message_size:
            return replies.REPLY_TOO_BIG
        try:
            reply = await self._judge_sender(server, envelope, address)
        except Exception as exc:  # noqa: BLE001
            log.error("MAIL check failed: %s", exc)
            return replies.REPLY_TEMPFAIL
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return replies.REPLY_SENDER_OK

    async def _judge_sender(
        self, server: GatewaySMTP, envelope: GatewayEnvelope, address: str
    ) -> str | None:
        async with self.services.db.session() as s:
            tenant: Tenant | None = None
            if server.auth_tenant_id:
                tenant = await accounts.get_tenant(s, server.auth_tenant_id)
            else:
                tenant = await accounts.tenant_by_network(s, server.client_ip)
            if tenant is not None:
                refusal = await identity.sender_refusal(s, tenant, address)
                if refusal:
                    return refusal
                envelope.tenant_id = tenant.id
                return None
            # Only a connector token in the headers can still identify this sender.
            if not await identity.may_be_connector(s, server.client_ip):
                envelope.deny = replies.REPLY_RELAY_DENIED
            return None

    async def handle_RCPT(
        self,
        server: GatewaySMTP,
        session: Session,
        envelope: GatewayEnvelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if envelope.deny:
            return envelope.deny
        if len(envelope.rcpt_tos) >= self.settings.smtp_max_recipients:
            return replies.REPLY_TOO_MANY_RCPTS
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return replies.REPLY_RCPT_OK

    # --- DATA ---------------------------------------------------------------------------

    async def handle_DATA(
        self, server: GatewaySMTP, session: Session, envelope: GatewayEnvelope
    ) -> str:
        data = envelope.original_content or b""
        try:
            return await self._accept(server, session, envelope, data)
        except Exception as exc:  # noqa: BLE001 - whatever broke, the sender retries
            log.error("could not queue a message from %s: %s", server.client_ip, exc)
            return replies.REPLY_TEMPFAIL

    async def _accept(
        self, server: GatewaySMTP, session: Session, envelope: GatewayEnvelope, data: bytes
    ) -> str:
        mail_from = envelope.mail_from or ""
        async with self.services.db.session() as s:
            tenant_id = envelope.tenant_id
            if tenant_id is None:
                token = header_value(data, identity.TOKEN_HEADER)
                tenant = (
                    await accounts.tenant_by_connector_token(s, token, server.client_ip)
                    if token
                    else None
                )
                if tenant is None:
                    return replies.REPLY_RELAY_DENIED
                refusal = await identity.sender_refusal(s, tenant, mail_from)
                if refusal:
                    return refusal
                tenant_id = tenant.id
            loop = has_valid_stamp(self._stamp_key, tenant_id, data)
            qid = queue_id()
            raw = _trace_header(server, session, qid) + data
            obj = await self.services.vault.seal(s, tenant_id, raw, kind="raw")
            try:
                s.add(
                    Message(
                        id=qid,
                        tenant_id=tenant_id,
                        mail_from=mail_from,
                        client_addr=server.client_ip,
                        size=len(data),
                        state="received",
                        disposition=DISPOSITION_LOOP if loop else "",
                        raw_object_id=obj.id,
                    )
                )
                await s.flush()
                s.add_all(MessageRecipient(message_id=qid, rcpt=r) for r in envelope.rcpt_tos)
                await s.commit()
            except BaseException:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self.services.store.delete, obj.storage_name)
                raise
        if self.wakeup is not None:
            self.wakeup.set()
        log.info(
            "queued %s from %s for %d recipients", qid, server.client_ip, len(envelope.rcpt_tos)
        )
        return replies.REPLY_QUEUED.format(id=qid)


def _size_param(mail_options: list[str]) -> int | None:
    """The SIZE= of MAIL FROM (0 when absent), ``None`` when malformed."""
    for opt in mail_options:
        key, _, value = opt.partition("=")
        if key.upper() == "SIZE":
            return int(value) if value.isdigit() else None
    return 0


def _trace_header(server: GatewaySMTP, session: Session, qid: str) -> bytes:
    """RFC 5321 4.4: every relay prepends a Received line (no recipients in it: Bcc)."""
    helo = (session.host_name or "unknown").replace("\r", "").replace("\n", "")[:200]
    proto = "ESMTP" if session.extended_smtp else "SMTP"
    if session.ssl is not None:
        proto += "S"
    if session.authenticated:
        proto += "A"
    line = (
        f"Received: from {helo} ([{server.client_ip}])\r\n"
        f"\tby {server.hostname} (sealmail) with {proto} id {qid};\r\n"
        f"\t{formatdate(localtime=False, usegmt=True)}\r\n"
    )
    return line.encode("utf-8", "surrogateescape")


def build_gateway(services: Services, wakeup: asyncio.Event | None = None) -> Gateway:
    """The SMTP listener for ``services.settings``; call ``await gateway.start()``."""
    return Gateway(services.settings, IntakeHandler(services, wakeup))


__all__ = ["Gateway", "IntakeHandler", "build_gateway"]
