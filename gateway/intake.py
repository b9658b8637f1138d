"""Intake: the aiosmtpd handler that accepts mail.

Identify the tenant, check its standing and relay rights, store the message sealed and
durably, and only then answer ``250 queued as <id>`` (Postfix's "accept first, filter
after"). The message is sealed while DATA streams in, never held whole in memory; the
rows of messages finishing together share one commit (:mod:`gateway.committer`). No
policy work and no third-party network calls happen in the dialogue. Any failure of our
own becomes ``451 4.3.0``, never a 5xx.
"""

from __future__ import annotations

import asyncio
import logging
from email.utils import formatdate
from typing import Any

from aiosmtpd.smtp import Envelope, Session

from archive.services import Services
from archive.vault import SealWriter
from core import logcontext
from core.accounts.authentication import authenticate_smtp, tenant_by_connector_token
from core.accounts.networks import tenant_by_network
from core.accounts.tenants import get_tenant
from core.ids import queue_id
from core.metrics import metrics
from core.models import Message, MessageRecipient, Tenant
from gateway import identity, replies
from gateway.committer import GroupCommitter
from gateway.headers import header_value, parse_headers
from gateway.journal import JOURNAL_HEADER
from gateway.listener import Gateway
from gateway.smtp_server import GatewayEnvelope, GatewaySMTP
from gateway.stamp import has_valid_stamp
from gateway.writegate import WriteGate, gate_for

log = logging.getLogger("sealmail.gateway.intake")

DISPOSITION_LOOP = "loop"  # carries our valid stamp: relay as it is
HEADER_LIMIT = 1024 * 1024  # header bytes kept to find a connector token; the rest streams


class IntakeHandler:
    """aiosmtpd hooks (``handle_EHLO/MAIL/RCPT/DATA``) plus AUTH and error handling."""

    def __init__(self, services: Services, wakeup: asyncio.Event | None = None) -> None:
        self.services = services
        self.settings = services.settings
        self.wakeup = wakeup
        self.committer = GroupCommitter(services)
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
                tenant = await authenticate_smtp(s, user, secret)
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
        logcontext.set_context(None, None)  # a new transaction: nothing known yet
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
        logcontext.set_tenant(envelope.tenant_id)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return replies.REPLY_SENDER_OK

    async def _judge_sender(
        self, server: GatewaySMTP, envelope: GatewayEnvelope, address: str
    ) -> str | None:
        async with self.services.db.session() as s:
            tenant: Tenant | None = None
            if server.auth_tenant_id:
                tenant = await get_tenant(s, server.auth_tenant_id)
            else:
                tenant = await tenant_by_network(s, server.client_ip)
            if tenant is not None:
                refusal = await identity.sender_refusal(s, tenant, address)
                if refusal == replies.REPLY_RELAY_DENIED and identity.journal_only_allowed(tenant):
                    envelope.journal_only = identity.journal_address(tenant)
                elif refusal:
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
        if envelope.tenant_id is None:
            try:
                reply = await self._journal_recipient(server, envelope, address)
            except Exception as exc:  # noqa: BLE001
                log.error("RCPT check failed: %s", exc)
                return replies.REPLY_TEMPFAIL
            if reply:
                return reply
        if envelope.journal_only and address.strip().lower() != envelope.journal_only:
            return replies.REPLY_RELAY_DENIED
        if len(envelope.rcpt_tos) >= self.settings.smtp_max_recipients:
            return replies.REPLY_TOO_MANY_RCPTS
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return replies.REPLY_RCPT_OK

    async def _journal_recipient(
        self, server: GatewaySMTP, envelope: GatewayEnvelope, address: str
    ) -> str | None:
        """A session not yet tied to a tenant may be Exchange delivering journal reports
        to a tenant's journal address from the tenant's networks: then the address names
        the tenant, and it must be the transaction's only recipient."""
        async with self.services.db.session() as s:
            tenant = await identity.tenant_by_journal_address(s, address, server.client_ip)
        if tenant is None:
            return None
        if envelope.rcpt_tos:  # others came first: they still need a connector token
            return replies.REPLY_RELAY_DENIED
        refusal = identity.standing_refusal(tenant)
        if refusal:
            return refusal
        envelope.tenant_id = tenant.id
        envelope.journal_only = identity.journal_address(tenant)
        logcontext.set_tenant(tenant.id)
        return None

    # --- DATA ---------------------------------------------------------------------------

    def begin_data(
        self, server: GatewaySMTP, session: Session, envelope: GatewayEnvelope
    ) -> IncomingMessage:
        """Called when DATA starts: the message is sealed while it streams in."""
        return IncomingMessage(self, server, session, envelope)

    @property
    def gate(self) -> WriteGate:
        return gate_for(self.services.db)


class IncomingMessage:
    """One message while its DATA arrives: the header block is kept until it is complete
    (a connector's tenant token is in it), then everything goes into a
    :class:`~archive.vault.SealWriter` as it comes. At the end the object is made durable,
    its rows are group-committed, and only then ``250``. Whatever breaks on our side is
    remembered, the rest of the data is read and dropped, and the reply is ``451 4.3.0``.
    """

    def __init__(
        self,
        handler: IntakeHandler,
        server: GatewaySMTP,
        session: Session,
        envelope: GatewayEnvelope,
    ) -> None:
        self.handler = handler
        self.server = server
        self.session = session
        self.envelope = envelope
        self.qid = queue_id()
        logcontext.set_queue_id(self.qid)
        self.size = 0
        self.loop = False
        self.reply: str | None = None  # decided before the end: the data is thrown away
        self._head = bytearray()  # the message until its header block is complete
        self._writer: SealWriter | None = None
        self._started = False
        self._active = True
        handler.gate.intake_active += 1

    def _done(self) -> None:
        if self._active:
            self._active = False
            self.handler.gate.intake_active -= 1

    async def write(self, data: bytes) -> None:
        if self.reply is not None:
            return
        self.size += len(data)
        try:
            if self._started:
                assert self._writer is not None
                await self._writer.write(data)
                return
            self._head += data
            if _header_complete(self._head) or len(self._head) >= HEADER_LIMIT:
                await self._start()
        except Exception as exc:  # noqa: BLE001 - whatever broke, the sender retries
            await self._give_up(exc)

    async def _start(self) -> None:
        """Identify the tenant (by token, for a connector), open the writer, and write the
        trace header and what has been kept so far."""
        self._started = True
        head, self._head = bytes(self._head), bytearray()
        services = self.handler.services
        tenant_id = self.envelope.tenant_id
        async with services.db.session() as s:
            if tenant_id is None:
                token = header_value(head, identity.TOKEN_HEADER)
                tenant = (
                    await tenant_by_connector_token(s, token, self.server.client_ip)
                    if token
                    else None
                )
                if tenant is None:
                    self.reply = replies.REPLY_RELAY_DENIED
                    return
                refusal = await identity.sender_refusal(s, tenant, self.envelope.mail_from or "")
                if refusal == replies.REPLY_RELAY_DENIED and _journal_report(
                    tenant, head, self.envelope.rcpt_tos
                ):
                    refusal = None  # a journal report from Exchange's own address
                if refusal:
                    self.reply = refusal
                    return
                tenant_id = tenant.id
                logcontext.set_tenant(tenant_id)
            self._writer = await services.vault.writer(s, tenant_id, kind="raw")
        self.loop = has_valid_stamp(self.handler._stamp_key, tenant_id, head)
        await self._writer.write(_trace_header(self.server, self.session, self.qid))
        await self._writer.write(head)

    async def _give_up(self, exc: Exception) -> None:
        log.error("could not queue a message from %s: %s", self.server.client_ip, exc)
        self.reply = replies.REPLY_TEMPFAIL
        await self.abort()

    async def finish(self) -> str:
        try:
            return await self._finish()
        finally:
            self._done()

    async def _finish(self) -> str:
        try:
            if not self._started and self.reply is None:
                await self._start()
            if self.reply is not None:
                await self.abort()
                return self.reply
            assert self._writer is not None
            return await self._queue(self._writer)
        except Exception as exc:  # noqa: BLE001 - whatever broke, the sender retries
            await self._give_up(exc)
            return replies.REPLY_TEMPFAIL

    async def _queue(self, writer: SealWriter) -> str:
        obj = await writer.close()  # durable: fsync'd, renamed, directory fsync'd
        message = Message(
            id=self.qid,
            tenant_id=writer.tenant_id,
            mail_from=self.envelope.mail_from or "",
            client_addr=self.server.client_ip,
            size=self.size,
            state="received",
            disposition=DISPOSITION_LOOP if self.loop else "",
            raw_object_id=obj.id,
        )
        rcpts = [MessageRecipient(message_id=self.qid, rcpt=r) for r in self.envelope.rcpt_tos]
        # Committed (with the others arriving now) before we answer; on failure the
        # committer has deleted the object and we answer 451.
        await self.handler.committer.commit(obj, message, rcpts)
        metrics().accepted.labels(tenant=writer.tenant_id).inc()
        if self.handler.wakeup is not None:
            self.handler.wakeup.set()
        log.info("queued %s from %s for %d recipients", self.qid, self.server.client_ip, len(rcpts))
        return replies.REPLY_QUEUED.format(id=self.qid)

    async def abort(self) -> None:
        self._done()
        if self._writer is not None:
            await self._writer.abort()

    def abort_nowait(self) -> None:
        self._done()
        if self._writer is not None:
            self._writer.abort_nowait()


def _journal_report(tenant: Tenant, head: bytes, rcpts: list[str]) -> bool:
    """A connector's message whose sender is not the tenant's may still be an Exchange
    journal report: it carries ``X-MS-Journal-Report`` or goes only to the tenant's
    journal address. It is archived, never delivered onwards (see gateway/journal.py)."""
    if identity.standing_refusal(tenant) is not None:
        return False
    try:
        if JOURNAL_HEADER in parse_headers(head):  # any value, even an empty one
            return True
    except Exception:  # noqa: BLE001, S110 - an unparseable header block: try the address
        pass
    address = identity.journal_address(tenant)
    return bool(address) and all(r.strip().lower() == address for r in rcpts)


def _header_complete(data: bytearray) -> bool:
    """The header block has ended (the decoder has made every line break CRLF)."""
    return data.startswith(b"\r\n") or data.find(b"\r\n\r\n") >= 0


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
