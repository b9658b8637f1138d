"""Intake: the aiosmtpd handler that accepts mail (EHLO, AUTH, MAIL, RCPT; DATA is
:mod:`gateway.intake.incoming`).

Identify the tenant, check its standing and relay rights, store the message sealed and
durably, and only then answer ``250 queued as <id>`` (Postfix's "accept first, filter
after"). The message is sealed while DATA streams in, never held whole in memory; the
rows of messages finishing together share one commit (:mod:`gateway.intake.committer`). No
policy work and no third-party network calls happen in the dialogue. Any failure of our
own becomes ``451 4.3.0``, never a 5xx.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiosmtpd.smtp import Envelope, Session

from core import logcontext
from core.accounts.authentication import authenticate_smtp
from core.accounts.networks import tenant_by_network
from core.accounts.tenants import get_tenant
from core.models import Tenant
from core.services import Services
from core.writegate import WriteGate
from gateway import onboarding
from gateway.intake import auth_limits, identity, replies
from gateway.intake.committer import GroupCommitter
from gateway.intake.incoming import IncomingMessage
from gateway.intake.listener import Gateway
from gateway.intake.smtp_server import GatewayEnvelope, GatewaySMTP

log = logging.getLogger("sealmail.gateway.intake")


class IntakeHandler:
    """aiosmtpd hooks (``handle_EHLO/MAIL/RCPT/DATA``) plus AUTH and error handling."""

    def __init__(self, services: Services, wakeup: asyncio.Event | None = None) -> None:
        self.services = services
        self.settings = services.settings
        self.wakeup = wakeup
        self.committer = GroupCommitter(services)
        self.stamp_key = services.keyring.stamp_key

    # --- errors -------------------------------------------------------------------------

    async def handle_exception(self, error: Exception) -> str:
        """Replaces aiosmtpd's default (a 5xx with the exception text)."""
        log.error("SMTP session error: %s", type(error).__name__, exc_info=error)
        return replies.REPLY_TEMPFAIL

    def _log_wait(self, step: str) -> None:
        """Our own work outlasted ``smtp_step_timeout``: the client got a 4xx, not silence."""
        log.error(
            "%s waited %.0f s for the database (smtp_step_timeout); replied with a 4xx",
            step,
            self.settings.smtp_step_timeout,
        )

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
        db = self.services.db
        counters = auth_limits.keys(server.client_ip or "", user)
        try:
            async with asyncio.timeout(self.settings.smtp_step_timeout):
                # count the try first; over a limit the password is not looked at
                if not await auth_limits.claim(db, counters):
                    log.warning(
                        "AUTH refused for %r from %s: too many tries", user, server.client_ip
                    )
                    return replies.REPLY_AUTH_TEMPFAIL
                async with db.session() as s:
                    tenant = await authenticate_smtp(s, user, secret)
                if tenant is not None:
                    await auth_limits.give_back(db, counters)
        except TimeoutError:
            self._log_wait("AUTH")
            return replies.REPLY_TEMPFAIL
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
        if server.path_problem:
            return replies.REPLY_SENDER_ROUTED.format(why=server.path_problem)
        size = _size_param(mail_options)
        if size is None:
            return replies.REPLY_BAD_SIZE_PARAM
        if size > self.settings.smtp_max_message_size:
            return replies.REPLY_TOO_BIG
        try:
            async with asyncio.timeout(self.settings.smtp_step_timeout):
                reply = await self._judge_sender(server, envelope, address)
        except TimeoutError:
            self._log_wait("MAIL")
            return replies.REPLY_TEMPFAIL
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
                envelope.identified_by = onboarding.BY_AUTH
            else:
                tenant = await tenant_by_network(s, server.client_ip)
                envelope.identified_by = onboarding.BY_NETWORK
            if tenant is not None:
                refusal = await identity.sender_refusal(s, tenant, address)
                if refusal == replies.REPLY_RELAY_DENIED and identity.journal_only_allowed(tenant):
                    envelope.journal_only = identity.journal_address(tenant)
                elif refusal:
                    if refusal == replies.REPLY_RELAY_DENIED:
                        onboarding.refused(
                            self.services,
                            client_ip=server.client_ip,
                            mail_from=address,
                            tenant_id=tenant.id,
                            why="sender",
                        )
                    return refusal
                envelope.tenant_id = tenant.id
                return None
            envelope.identified_by = ""
            # Only a connector token in the headers can still identify this sender.
            if not await identity.may_be_connector(s, server.client_ip):
                envelope.deny = replies.REPLY_RELAY_DENIED
                onboarding.refused(
                    self.services, client_ip=server.client_ip, mail_from=address, why="network"
                )
            return None

    async def handle_RCPT(
        self,
        server: GatewaySMTP,
        session: Session,
        envelope: GatewayEnvelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if server.path_problem:
            return replies.REPLY_RCPT_ROUTED.format(why=server.path_problem)
        if envelope.deny:
            return envelope.deny
        if envelope.tenant_id is None:
            try:
                async with asyncio.timeout(self.settings.smtp_step_timeout):
                    reply = await self._journal_recipient(server, envelope, address)
            except TimeoutError:
                self._log_wait("RCPT")
                return replies.REPLY_TEMPFAIL
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
        envelope.identified_by = onboarding.BY_JOURNAL
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
        return self.services.db.write_gate


def _size_param(mail_options: list[str]) -> int | None:
    """The SIZE= of MAIL FROM (0 when absent), ``None`` when malformed."""
    for opt in mail_options:
        key, _, value = opt.partition("=")
        if key.upper() == "SIZE":
            return int(value) if value.isdigit() else None
    return 0


def build_gateway(services: Services, wakeup: asyncio.Event | None = None) -> Gateway:
    """The SMTP listener for ``services.settings``; call ``await gateway.start()``."""
    return Gateway(services.settings, IntakeHandler(services, wakeup))


__all__ = ["IntakeHandler", "build_gateway"]
