"""A tenant's records as the CLI and ``/admin/domains`` show them, checked live, and the
switch to a pending key once DNS shows its record (the one path both take)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from core.accounts.domains import tenant_domains
from core.config.settings import Settings
from core.dkim import keys, records
from core.dkim.models import DkimKey
from core.dns import TxtResolver
from core.keyring import KeyRing
from core.models import Tenant


def resolver(settings: Settings) -> TxtResolver:
    """The resolver the live checks ask (``dns_resolver``, else the system's)."""
    return TxtResolver(settings.dns_resolver)


async def records_of(
    session: AsyncSession, settings: Settings, tenant: Tenant
) -> list[records.Record]:
    domains = await tenant_domains(session, tenant.id)
    found = await keys.keys_of(session, tenant.id)
    hop = (tenant.relay or "").strip() or settings.relay
    return records.expected(domains, found, hop, settings.smtp_hostname)


async def checked(session: AsyncSession, settings: Settings, tenant: Tenant) -> list[records.Check]:
    """Every record of the tenant and what DNS shows for it, now."""
    wanted = await records_of(session, settings, tenant)
    return await records.check(wanted, resolver(settings).txt)


async def activate(
    session: AsyncSession,
    keyring: KeyRing,
    settings: Settings,
    tenant: Tenant,
    actor: str,
    domain: str | None = None,
    *,
    force: bool = False,
) -> list[DkimKey]:
    """Switch to the pending key(s) whose record DNS shows (all of them with ``force``)."""
    shown: dict[str, bool] = {}
    if not force:
        shown = records.published(await checked(session, settings, tenant))
    return await keys.activate(
        session, keyring, tenant.id, actor, domain, published=shown, force=force
    )
