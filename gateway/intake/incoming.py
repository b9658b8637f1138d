"""One message while its DATA streams in: sealed as it comes, made durable,
group-committed, and only then answered ``250`` (or ``451 4.3.0`` for our own failure)."""

from __future__ import annotations

import asyncio
import logging
from email.utils import formatdate
from typing import Protocol

from aiosmtpd.smtp import Session

from core import logcontext
from core.accounts.authentication import tenant_by_connector_token
from core.ids import queue_id
from core.metrics import metrics
from core.models import Message, MessageRecipient, Tenant
from core.services import Services
from core.storage.vault import SealWriter
from core.writegate import WriteGate
from gateway import onboarding
from gateway.headers import header_value, parse_headers
from gateway.intake import identity, replies
from gateway.intake.committer import GroupCommitter
from gateway.intake.smtp_server import GatewayEnvelope, GatewaySMTP
from gateway.pipeline.journal import JOURNAL_HEADER
from gateway.stamp import DISPOSITION_LOOP, has_valid_stamp

log = logging.getLogger("sealmail.gateway.intake")

HEADER_LIMIT = 1024 * 1024  # header bytes kept to find a connector token; the rest streams


class IntakeParts(Protocol):
    """What a message in DATA uses of the SMTP handler (:class:`~gateway.intake.handler.
    IntakeHandler`)."""

    services: Services
    committer: GroupCommitter
    wakeup: asyncio.Event | None
    stamp_key: bytes

    @property
    def gate(self) -> WriteGate: ...


class IncomingMessage:
    """One message while its DATA arrives: the header block is kept until it is complete
    (a connector's tenant token is in it), then everything goes into a
    :class:`~archive.vault.SealWriter` as it comes. At the end the object is made durable,
    its rows are group-committed, and only then ``250``. Whatever breaks on our side is
    remembered, the rest of the data is read and dropped, and the reply is ``451 4.3.0``.
    """

    def __init__(
        self,
        handler: IntakeParts,
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
        bound = services.settings.smtp_step_timeout
        try:
            async with asyncio.timeout(bound):
                tenant_id = await self._open(head, tenant_id)
        except TimeoutError:
            log.error(
                "DATA waited %.0f s for the database and the tenant key (smtp_step_timeout);"
                " replied with a 4xx",
                bound,
            )
            raise
        if tenant_id is None:
            return
        assert self._writer is not None
        self.loop = has_valid_stamp(self.handler.stamp_key, tenant_id, head)
        await self._writer.write(_trace_header(self.server, self.session, self.qid))
        await self._writer.write(head)

    async def _open(self, head: bytes, tenant_id: str | None) -> str | None:
        """The tenant (by token, for a connector) and an open writer under its key; None
        with :attr:`reply` set when the message is refused."""
        services = self.handler.services
        async with services.db.session() as s:
            if tenant_id is None:
                token = header_value(head, identity.TOKEN_HEADER)
                tenant = (
                    await tenant_by_connector_token(s, token, self.server.client_ip)
                    if token
                    else None
                )
                mail_from = self.envelope.mail_from or ""
                if tenant is None:
                    self.reply = replies.REPLY_RELAY_DENIED
                    onboarding.refused(
                        services,
                        client_ip=self.server.client_ip,
                        mail_from=mail_from,
                        token=token or "",
                        why="token",
                    )
                    return None
                refusal = await identity.sender_refusal(s, tenant, mail_from)
                if refusal == replies.REPLY_RELAY_DENIED and _journal_report(
                    tenant, head, self.envelope.rcpt_tos
                ):
                    refusal = None  # a journal report from Exchange's own address
                if refusal:
                    self.reply = refusal
                    if refusal == replies.REPLY_RELAY_DENIED:
                        onboarding.refused(
                            services,
                            client_ip=self.server.client_ip,
                            mail_from=mail_from,
                            tenant_id=tenant.id,
                            why="sender",
                        )
                    return None
                tenant_id = tenant.id
                self.envelope.identified_by = onboarding.BY_TOKEN
                logcontext.set_tenant(tenant_id)
            self._writer = await services.vault.writer(s, tenant_id, kind="raw")
        return tenant_id

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
        await self.handler.committer.commit(
            obj, message, rcpts, self.handler.services.settings.smtp_step_timeout
        )
        metrics().accepted.labels(tenant=writer.tenant_id).inc()
        await onboarding.accepted(
            self.handler.services,
            writer.tenant_id,
            self.qid,
            self.server.client_ip,
            self.envelope.mail_from or "",
            self.envelope.identified_by,
        )
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
    journal address. It is archived, never delivered onwards (see gateway/pipeline/journal.py)."""
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
