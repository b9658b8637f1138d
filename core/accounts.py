"""Partners, tenants and how a sender proves which tenant it belongs to.

Secrets are stored hashed: SMTP passwords with Argon2 (they may be chosen by people later),
connector tokens and API keys with SHA-256 (they are 256-bit random values).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import ipaddress
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.config import parse_relay
from core.errors import NotFound, PermanentError
from core.ids import new_id, new_token
from core.keyring import KeyRing
from core.keys import sha256_hex
from core.models import (
    AllowedNetwork,
    ApiKey,
    AuditEvent,
    ConnectorToken,
    Partner,
    SmtpCredential,
    Tenant,
    TenantDomain,
    User,
)

STANDINGS = ("active", "suspended", "terminated")
PLANS = ("trial", "nfr", "paid")
ROLES = ("admin", "compliance", "sender")
_hasher = PasswordHasher()
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$")


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


def normalize_domain(domain: str) -> str:
    d = domain.strip().lower().rstrip(".")
    try:
        d = d.encode("idna").decode("ascii")
    except UnicodeError:
        raise PermanentError(f"invalid domain {domain!r}") from None
    if not _DOMAIN.match(d):
        raise PermanentError(f"invalid domain {domain!r}")
    return d


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().lower().rstrip(".")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def audit(
    session: AsyncSession,
    tenant_id: str | None,
    actor: str,
    action: str,
    subject_id: str = "",
    **detail: Any,
) -> None:
    session.add(
        AuditEvent(
            tenant_id=tenant_id,
            actor=actor,
            action=action,
            subject_id=subject_id,
            detail=json.dumps(detail, sort_keys=True, default=str),
        )
    )


async def create_partner(session: AsyncSession, name: str) -> Partner:
    if not _NAME.match(name):
        raise PermanentError(f"invalid partner name {name!r}")
    if (await session.execute(select(Partner).where(Partner.name == name))).scalar():
        raise PermanentError(f"partner {name!r} already exists")
    partner = Partner(id=new_id("p_"), name=name)
    session.add(partner)
    await audit(session, None, "cli", "partner.create", partner.id, name=name)
    return partner


async def find_partner(session: AsyncSession, ref: str) -> Partner:
    stmt = select(Partner).where(or_(Partner.id == ref, Partner.name == ref))
    partner = (await session.execute(stmt)).scalar()
    if partner is None:
        raise NotFound(f"no partner {ref!r}")
    return partner


async def list_partners(session: AsyncSession) -> Sequence[Partner]:
    return (await session.execute(select(Partner).order_by(Partner.name))).scalars().all()


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
) -> TenantCredentials:
    """Create a tenant with its domains, first KEK and credentials (returned in clear once)."""
    if not _NAME.match(name):
        raise PermanentError(f"invalid tenant name {name!r}: letters, digits, space . _ -")
    if plan not in PLANS:
        raise PermanentError(f"invalid plan {plan!r}: expected {', '.join(PLANS)}")
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
    )
    session.add(tenant)
    await session.flush()
    for d in wanted:
        session.add(TenantDomain(domain=d, tenant_id=tenant.id))
    for cidr, private in networks:
        session.add(AllowedNetwork(tenant_id=tenant.id, cidr=_network(cidr), private=private))
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
    await audit(session, tenant.id, "cli", "tenant.create", tenant.id, name=name, domains=wanted)
    return TenantCredentials(tenant.id, name, tenant.id, password, token, api_key)


def _network(cidr: str) -> str:
    try:
        return str(ipaddress.ip_network(cidr.strip(), strict=False))
    except ValueError:
        raise PermanentError(f"invalid network {cidr!r}") from None


async def add_network(session: AsyncSession, tenant: Tenant, cidr: str, private: bool) -> None:
    session.add(AllowedNetwork(tenant_id=tenant.id, cidr=_network(cidr), private=private))
    await audit(session, tenant.id, "cli", "tenant.network.add", tenant.id, cidr=cidr)


async def add_user(session: AsyncSession, tenant: Tenant, email: str, role: str) -> User:
    if role not in ROLES:
        raise PermanentError(f"invalid role {role!r}")
    user = User(id=new_id("u_"), tenant_id=tenant.id, email=email.strip().lower(), role=role)
    session.add(user)
    await audit(session, tenant.id, "cli", "user.add", user.id, email=user.email, role=role)
    return user


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


async def tenant_domains(session: AsyncSession, tenant_id: str) -> list[str]:
    stmt = select(TenantDomain.domain).where(TenantDomain.tenant_id == tenant_id)
    return sorted((await session.execute(stmt)).scalars().all())


async def tenant_networks(session: AsyncSession, tenant_id: str) -> list[AllowedNetwork]:
    stmt = select(AllowedNetwork).where(AllowedNetwork.tenant_id == tenant_id)
    return list((await session.execute(stmt)).scalars().all())


async def set_standing(session: AsyncSession, tenant: Tenant, standing: str, actor: str) -> None:
    if standing not in STANDINGS:
        raise PermanentError(f"invalid standing {standing!r}")
    old = tenant.standing
    tenant.standing = standing
    await audit(session, tenant.id, actor, f"tenant.{standing}", tenant.id, previous=old)


async def authenticate_smtp(session: AsyncSession, username: str, password: str) -> Tenant | None:
    cred = await session.get(SmtpCredential, username)
    if cred is None:
        # spend the same time as a real check so user names cannot be probed by timing
        await asyncio.to_thread(verify_password, _dummy_hash(), password)
        return None
    if not await asyncio.to_thread(verify_password, cred.password_hash, password):
        return None
    return await session.get(Tenant, cred.tenant_id)


@functools.cache
def _dummy_hash() -> str:
    """Made on first use, not at import: an Argon2 hash takes 64 MiB while it runs, which
    every process importing this module (CLI tools, the archive verifier) would pay."""
    return _hasher.hash("sealmail-dummy-password")


def _in_networks(client_ip: str, networks: Iterable[AllowedNetwork]) -> bool:
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


async def tenant_by_connector_token(
    session: AsyncSession, token: str, client_ip: str
) -> Tenant | None:
    """The tenant whose connector token this is, if the client is in its allowed networks."""
    row = await session.get(ConnectorToken, sha256_hex(token.strip()))
    if row is None:
        return None
    if not _in_networks(client_ip, await tenant_networks(session, row.tenant_id)):
        return None
    return await session.get(Tenant, row.tenant_id)


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


async def authenticate_api_key(session: AsyncSession, key: str) -> tuple[Tenant, str] | None:
    row = await session.get(ApiKey, sha256_hex(key.strip()))
    if row is None:
        return None
    tenant = await session.get(Tenant, row.tenant_id)
    return (tenant, row.role) if tenant else None


_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


async def update_tenant(
    session: AsyncSession,
    tenant: Tenant,
    actor: str,
    *,
    display_name: str | None = None,
    logo_url: str | None = None,
    brand_color: str | None = None,
    hide_subject: bool | None = None,
    sensitivity_trigger: bool | None = None,
    notification_from: str | None = None,
    wkd_lookup: bool | None = None,
    pgp_protect_subject: bool | None = None,
    relay: str | None = None,
    journal_address: str | None = None,
) -> dict[str, Any]:
    """Change a tenant's settings; returns what changed (audited)."""
    changes: dict[str, Any] = {}
    if display_name is not None:
        if not display_name.strip() or len(display_name) > 200:
            raise PermanentError("display name must be 1 to 200 characters")
        changes["display_name"] = display_name.strip()
    if logo_url is not None:
        if logo_url and (not logo_url.startswith("https://") or any(c.isspace() for c in logo_url)):
            raise PermanentError("logo URL must start with https:// (or be empty)")
        changes["logo_url"] = logo_url
    if brand_color is not None:
        if not _COLOR.match(brand_color):
            raise PermanentError("brand color must look like #1f4e79")
        changes["brand_color"] = brand_color.lower()
    if hide_subject is not None:
        changes["hide_subject"] = hide_subject
    if sensitivity_trigger is not None:
        changes["sensitivity_trigger"] = sensitivity_trigger
    if wkd_lookup is not None:
        changes["wkd_lookup"] = wkd_lookup
    if pgp_protect_subject is not None:
        changes["pgp_protect_subject"] = pgp_protect_subject
    if notification_from is not None:
        address = notification_from.strip().lower()
        if address and domain_of(address) not in await tenant_domains(session, tenant.id):
            raise PermanentError(
                f"notification address {address!r} is not in one of the tenant's domains"
            )
        changes["notification_from"] = address
    if journal_address is not None:
        # Exchange Online journals only to an address outside the organisation, so this
        # is usually one in the MSP's domain; it names the tenant, so it is unique.
        address = journal_address.strip().lower()
        local, _, domain = address.partition("@")
        if address and (
            not local or "." not in domain or "@" in domain or any(c.isspace() for c in address)
        ):
            raise PermanentError(f"journal address {address!r} is not an email address")
        if address:
            other = (
                await session.execute(
                    select(Tenant.name).where(
                        Tenant.journal_address == address, Tenant.id != tenant.id
                    )
                )
            ).scalar_one_or_none()
            if other is not None:
                raise PermanentError(f"journal address {address!r} belongs to another tenant")
        changes["journal_address"] = address
    if relay is not None:
        hop = relay.strip()
        if hop:
            try:
                hop = parse_relay(hop)
            except ValueError:
                raise PermanentError(
                    f"next hop {relay!r}: expected host:port, mx, or '' for the global relay"
                ) from None
        changes["relay"] = hop
    changes = {k: v for k, v in changes.items() if getattr(tenant, k) != v}
    for key, value in changes.items():
        setattr(tenant, key, value)
    if changes:
        await audit(session, tenant.id, actor, "tenant.update", tenant.id, **changes)
    return changes
