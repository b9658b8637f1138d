"""The networks a tenant's mail may come from; a private range alone identifies its tenant."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import audit
from core.errors import NotFound, PermanentError
from core.models import AllowedNetwork, Tenant


def normalize_network(cidr: str) -> str:
    try:
        return str(ipaddress.ip_network(cidr.strip(), strict=False))
    except ValueError:
        raise PermanentError(f"invalid network {cidr!r}") from None


async def add_network(
    session: AsyncSession, tenant: Tenant, cidr: str, private: bool, actor: str = "cli"
) -> None:
    network = normalize_network(cidr)
    if any(n.cidr == network for n in await tenant_networks(session, tenant.id)):
        raise PermanentError(f"network {network} is already listed")
    session.add(AllowedNetwork(tenant_id=tenant.id, cidr=network, private=private))
    await audit(
        session, tenant.id, actor, "tenant.network.add", tenant.id, cidr=network, private=private
    )


async def remove_network(session: AsyncSession, tenant_id: str, network_id: int, actor: str) -> str:
    row = await session.get(AllowedNetwork, network_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound("no such network")
    await session.delete(row)
    await audit(session, tenant_id, actor, "tenant.network.remove", tenant_id, cidr=row.cidr)
    return row.cidr


async def tenant_networks(session: AsyncSession, tenant_id: str) -> list[AllowedNetwork]:
    stmt = select(AllowedNetwork).where(AllowedNetwork.tenant_id == tenant_id)
    return list((await session.execute(stmt)).scalars().all())


def in_networks(client_ip: str, networks: Iterable[AllowedNetwork]) -> bool:
    try:
        addr = ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    for n in networks:
        try:
            if addr in ipaddress.ip_network(n.cidr):
                return True
        except ValueError:
            continue
    return False


async def tenant_by_network(session: AsyncSession, client_ip: str) -> Tenant | None:
    """The one tenant with a private range containing ``client_ip`` (most specific wins)."""
    rows = (
        (await session.execute(select(AllowedNetwork).where(AllowedNetwork.private)))
        .scalars()
        .all()
    )
    try:
        addr = ipaddress.ip_address(client_ip)
    except ValueError:
        return None
    best: tuple[int, str] | None = None
    for n in rows:
        net = ipaddress.ip_network(n.cidr)
        if addr in net and (best is None or net.prefixlen > best[0]):
            best = (net.prefixlen, n.tenant_id)
    return await session.get(Tenant, best[1]) if best else None
