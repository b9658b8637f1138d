"""Tenants: created with their domains, first KEK and credentials; found, listed, and put in
good or bad standing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
from collections.abc import Iterable, Sequence

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.accounts.domains import normalize_domain
from core.accounts.networks import normalize_network
from core.accounts.partners import ACCOUNT_NAME, find_partner
from core.audit import audit
from core.errors import NotFound, PermanentError
from core.hashing import hash_password, sha256_hex
from core.ids import new_id, new_token
from core.keyring import KeyRing
from core.models import AllowedNetwork, ApiKey, ConnectorToken, SmtpCredential, Tenant, TenantDomain

STANDINGS = ("active", "suspended", "terminated")
PLANS = ("trial", "nfr", "paid")


@dataclasses.dataclass(frozen=True)
class TenantCredentials:
    """What ``tenant create`` shows exactly once."""

    tenant_id: str
    name: str
    smtp_username: str
    smtp_password: str
    connector_token: str
    api_key: str

    def __repr__(self) -> str:
        return f"TenantCredentials(tenant_id={self.tenant_id!r}, name={self.name!r}, ...)"


async def create_tenant(
    session: AsyncSession,
    keyring: KeyRing,
    name: str,
    domains: Iterable[str],
    *,
    partner: str | None = None,
    plan: str = "paid",
    display_name: str = "",
    networks: Iterable[tuple[str, bool]] = (),
    trial_ends_on: datetime.date | None = None,
    actor: str = "cli",
) -> TenantCredentials:
    """Create a tenant with its domains, first KEK and credentials (returned in clear once)."""
    if not ACCOUNT_NAME.match(name):
        raise PermanentError(f"invalid tenant name {name!r}: letters, digits, space . _ -")
    if plan not in PLANS:
        raise PermanentError(f"invalid plan {plan!r}: expected {', '.join(PLANS)}")
    if trial_ends_on is not None and plan != "trial":
        raise PermanentError("only a trial has an end date (--plan trial)")
    wanted = sorted({normalize_domain(d) for d in domains})
    if not wanted:
        raise PermanentError("a tenant needs at least one --domain")
    if (await session.execute(select(Tenant).where(Tenant.name == name))).scalar():
        raise PermanentError(f"tenant {name!r} already exists")
    taken = (
        (await session.execute(select(TenantDomain).where(TenantDomain.domain.in_(wanted))))
        .scalars()
        .first()
    )
    if taken is not None:
        raise PermanentError(f"domain {taken.domain} already belongs to another tenant")
    partner_id = (await find_partner(session, partner)).id if partner else None
    tenant = Tenant(
        id=new_id("t_"),
        name=name,
        display_name=display_name or name,
        partner_id=partner_id,
        plan=plan,
        standing="active",
        trial_ends_on=trial_ends_on,
    )
    session.add(tenant)
    await session.flush()
    for d in wanted:
        session.add(TenantDomain(domain=d, tenant_id=tenant.id))
    for cidr, private in networks:
        session.add(
            AllowedNetwork(tenant_id=tenant.id, cidr=normalize_network(cidr), private=private)
        )
    await keyring.create_tenant_key(session, tenant.id)
    password = new_token(24)
    token = new_token(32)
    api_key = "smk_" + new_token(32)
    session.add(
        SmtpCredential(
            username=tenant.id,
            tenant_id=tenant.id,
            password_hash=await asyncio.to_thread(hash_password, password),
        )
    )
    session.add(ConnectorToken(token_hash=sha256_hex(token), tenant_id=tenant.id))
    session.add(
        ApiKey(key_hash=sha256_hex(api_key), tenant_id=tenant.id, role="admin", prefix=api_key[:8])
    )
    await audit(
        session,
        tenant.id,
        actor,
        "tenant.create",
        tenant.id,
        name=name,
        domains=wanted,
        plan=plan,
        partner=partner_id,
        trial_ends_on=trial_ends_on.isoformat() if trial_ends_on else None,
    )
    return TenantCredentials(tenant.id, name, tenant.id, password, token, api_key)


async def find_tenant(session: AsyncSession, ref: str) -> Tenant:
    stmt = select(Tenant).where(or_(Tenant.id == ref, Tenant.name == ref))
    tenant = (await session.execute(stmt)).scalar()
    if tenant is None:
        raise NotFound(f"no tenant {ref!r}")
    return tenant


async def get_tenant(session: AsyncSession, tenant_id: str) -> Tenant | None:
    return await session.get(Tenant, tenant_id)


async def list_tenants(session: AsyncSession) -> Sequence[Tenant]:
    return (await session.execute(select(Tenant).order_by(Tenant.name))).scalars().all()


async def set_standing(session: AsyncSession, tenant: Tenant, standing: str, actor: str) -> None:
    if standing not in STANDINGS:
        raise PermanentError(f"invalid standing {standing!r}")
    old = tenant.standing
    tenant.standing = standing
    await audit(session, tenant.id, actor, f"tenant.{standing}", tenant.id, previous=old)
