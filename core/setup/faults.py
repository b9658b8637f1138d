"""Whose check a refused session belongs to, and the sentence that says what is wrong.

A refused session has no tenant, so it is attributed to the tenant whose check is open:
by the connector token when it is present and valid, else by the envelope sender's domain.
The sentences name what the admin must fix (the client address and the tenant's allowed
networks, the sender's domain and the tenant's domains), never any content.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from core.accounts.domains import tenant_domains
from core.accounts.networks import tenant_networks
from core.addresses import domain_of
from core.hashing import sha256_hex
from core.models import ConnectorToken, TenantDomain
from core.setup import checks

Fault = tuple[str, bool, str]


def _domain(mail_from: str) -> str:
    return domain_of(mail_from) if "@" in mail_from else ""


async def tenant_of_token(session: AsyncSession, token: str) -> str | None:
    """The tenant whose connector token ``token`` is (its networks not yet considered)."""
    if not token.strip():
        return None
    row = await session.get(ConnectorToken, sha256_hex(token.strip()))
    return row.tenant_id if row is not None else None


async def tenant_of_sender(session: AsyncSession, mail_from: str) -> str | None:
    """The tenant owning the envelope sender's domain."""
    domain = _domain(mail_from)
    if not domain:
        return None
    row = await session.get(TenantDomain, domain)
    return row.tenant_id if row is not None else None


def _listed(items: list[str], none: str) -> str:
    return ", ".join(items) if items else none


def arrived(client_ip: str, mail_from: str) -> Fault:
    return (
        checks.ARRIVED,
        True,
        f"A message came in from {client_ip or 'an unknown address'}, "
        f"envelope sender {mail_from or '<> (the null sender)'}.",
    )


async def network_fault(session: AsyncSession, tenant_id: str, client_ip: str) -> Fault:
    nets = [n.cidr for n in await tenant_networks(session, tenant_id)]
    return (
        checks.NETWORK,
        False,
        f"The message came from {client_ip}, which is not in this tenant's allowed networks "
        f"({_listed(nets, 'none are listed')}). Add the address your mail server sends "
        "from under Settings, or send from an allowed network.",
    )


async def domain_fault(session: AsyncSession, tenant_id: str, mail_from: str) -> Fault:
    domains = await tenant_domains(session, tenant_id)
    return (
        checks.SENDER_DOMAIN,
        False,
        f"The envelope sender's domain {_domain(mail_from) or '(none)'} is not one of this "
        f"tenant's domains ({_listed(domains, 'none')}). Send from an address of one of them.",
    )


def no_token_fault() -> Fault:
    return (
        checks.NO_TOKEN,
        False,
        "The message had no X-Sealmail-Tenant-Token header, so it could not be matched to "
        "this tenant. Check that the mail flow rule sets the header with your connector "
        "token, and that the rule (not only the connector) routed this message.",
    )


def unknown_token_fault() -> Fault:
    return (
        checks.UNKNOWN_TOKEN,
        False,
        "The message carried an X-Sealmail-Tenant-Token header, but its value is not a "
        "connector token of this service. Paste the token exactly (no spaces), or issue a "
        "new one on this page.",
    )
