"""Who is sending: which tenant a session or a message belongs to, and may it send.

Three ways (SPEC §3): SMTP AUTH; the client address alone in a tenant's private range;
or the connector token header together with a client address in the tenant's allowed
networks. The last is only known once the headers arrive, at DATA.
"""

from __future__ import annotations

import ipaddress

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.accounts.domains import tenant_domains
from core.accounts.networks import tenant_networks
from core.accounts.trials import nfr_message_refusal, trial_over
from core.addresses import domain_of
from core.models import AllowedNetwork, Tenant
from gateway.intake.replies import REPLY_RELAY_DENIED, REPLY_SUSPENDED, REPLY_TERMINATED

TOKEN_HEADER = "X-Sealmail-Tenant-Token"  # noqa: S105 - a header name


def standing_refusal(tenant: Tenant) -> str | None:
    """The reply for a tenant that may not send now, or ``None``. A trial past its end date
    is suspended by itself (no billing system needed): the mail waits at the sender."""
    if tenant.standing == "suspended":
        return REPLY_SUSPENDED
    if tenant.standing != "active":
        return REPLY_TERMINATED
    if trial_over(tenant):
        assert tenant.trial_ends_on is not None
        return f"{REPLY_SUSPENDED}: the trial ended on {tenant.trial_ends_on.isoformat()}"
    return None


async def sender_refusal(session: AsyncSession, tenant: Tenant, mail_from: str) -> str | None:
    """Standing first (a suspended tenant's mail waits at the sender), then the envelope
    sender's domain, which must be one of the tenant's."""
    refusal = standing_refusal(tenant)
    if refusal:
        return refusal
    if not await own_sender(session, tenant, mail_from):
        return REPLY_RELAY_DENIED
    if tenant.plan == "nfr":
        why = await nfr_message_refusal(session, tenant)
        if why:
            return f"451 4.7.1 {why}"
    return None


async def own_sender(session: AsyncSession, tenant: Tenant, mail_from: str) -> bool:
    """The envelope sender is an address of one of the tenant's domains."""
    domain = domain_of(mail_from) if "@" in mail_from else ""
    return bool(domain) and domain in await tenant_domains(session, tenant.id)


def journal_address(tenant: Tenant) -> str:
    """The tenant's journal address, normalised ("" when it has none)."""
    return (tenant.journal_address or "").strip().lower()


def journal_only_allowed(tenant: Tenant) -> bool:
    """Exchange sends journal reports from its own system address (for example
    MicrosoftExchange...@tenant.onmicrosoft.com) or the null sender, never from one of the
    tenant's domains. Such a sender is accepted when its only recipient can be the tenant's
    journal address: the reports are archived and never delivered onwards, so this opens
    no relay. Refusing them would make Exchange disable the journal rule."""
    return standing_refusal(tenant) is None and bool(journal_address(tenant))


async def tenant_by_journal_address(
    session: AsyncSession, address: str, client_ip: str
) -> Tenant | None:
    """The tenant whose journal address ``address`` is, when ``client_ip`` is in one of its
    allowed networks (Exchange Online journals to an outside address through an outbound
    connector that cannot add our token header: the address itself names the tenant)."""
    address = address.strip().lower()
    if not address:
        return None
    tenant = (
        await session.execute(select(Tenant).where(Tenant.journal_address == address))
    ).scalar_one_or_none()
    if tenant is None:
        return None
    try:
        addr = ipaddress.ip_address(client_ip)
    except ValueError:
        return None
    for n in await tenant_networks(session, tenant.id):
        try:
            if addr in ipaddress.ip_network(n.cidr):
                return tenant
        except ValueError:
            continue
    return None


async def may_be_connector(session: AsyncSession, client_ip: str) -> bool:
    """True when some tenant allows ``client_ip``, so a connector token could still
    identify the sender at DATA time; otherwise relaying can be refused at once."""
    try:
        addr = ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    rows = (await session.execute(select(AllowedNetwork.cidr))).scalars().all()
    for cidr in rows:
        try:
            if addr in ipaddress.ip_network(cidr):
                return True
        except ValueError:
            continue
    return False
