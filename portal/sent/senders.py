"""Who may sign in at ``/sent`` (and ``/compose``, which uses the same door): any address of
one of a tenant's domains, found by the address's domain in ``tenant_domains``, unless the
tenant restricts it to listed users (``Tenant.sent_users == "listed"``); a listed user of the
tenant always may. An unlisted address gets a session of kind ``sender`` only, never an
admin one, and is checked again on every request: a tenant that switches to "listed" or
drops the domain shuts those sessions at once.

The pending sign-in's subject says whom a code is for: a listed user's id, or
``addr:<tenant id>:<address>`` for an unlisted address.
"""

from __future__ import annotations

import dataclasses

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import Tenant, TenantDomain, User

LISTED_ONLY = "listed"
_ADDR = "addr:"


@dataclasses.dataclass(frozen=True)
class Sender:
    """Someone who may sign in at ``/sent``: a listed user, or an address of the tenant's
    domains standing in as a transient ``User`` of role ``sender`` (never stored)."""

    tenant: Tenant
    user: User
    listed: bool

    @property
    def subject(self) -> str:
        if self.listed:
            return self.user.id
        return f"{_ADDR}{self.tenant.id}:{self.user.email}"


def _domain(email: str) -> str:
    return email.rpartition("@")[2].strip().lower().rstrip(".")


async def tenant_of_domain(s: AsyncSession, email: str) -> Tenant | None:
    """The live tenant one of whose domains ``email`` is at, or None."""
    stmt = (
        select(Tenant)
        .join(TenantDomain, TenantDomain.tenant_id == Tenant.id)
        .where(TenantDomain.domain == _domain(email), Tenant.standing != "terminated")
    )
    return (await s.execute(stmt)).scalars().first()


async def _listed(
    s: AsyncSession, email: str, roles: tuple[str, ...], tenant_id: str | None
) -> User | None:
    stmt = (
        select(User)
        .join(Tenant, Tenant.id == User.tenant_id)
        .where(
            func.lower(User.email) == email.strip().lower(),
            User.role.in_(roles),
            Tenant.standing != "terminated",
        )
        .order_by(Tenant.name)
        .limit(1)
    )
    if tenant_id is not None:
        stmt = stmt.where(User.tenant_id == tenant_id)
    return (await s.execute(stmt)).scalars().first()


def _stand_in(tenant: Tenant, email: str) -> User:
    return User(id="", tenant_id=tenant.id, email=email.strip().lower(), role="sender")


async def sender_for(s: AsyncSession, email: str, roles: tuple[str, ...]) -> Sender | None:
    """Who ``email`` signs in as at ``/sent``, or None when it may not. The tenant is the
    one of the address's domain; a listed user of another tenant (an address outside that
    tenant's domains) is found as before."""
    tenant = await tenant_of_domain(s, email)
    if tenant is None:
        user = await _listed(s, email, roles, None)
        if user is None:
            return None
        found = await s.get(Tenant, user.tenant_id)
        return Sender(found, user, True) if found is not None else None
    user = await _listed(s, email, roles, tenant.id)
    if user is not None:
        return Sender(tenant, user, True)
    if tenant.sent_users == LISTED_ONLY:
        return None
    return Sender(tenant, _stand_in(tenant, email), False)


async def sender_of_subject(s: AsyncSession, subject: str, roles: tuple[str, ...]) -> Sender | None:
    """The sender a pending sign-in was for, checked again now (the code may be entered
    after the tenant changed its mind)."""
    if not subject:
        return None
    if not subject.startswith(_ADDR):
        user = await s.get(User, subject)
        if user is None or user.role not in roles:
            return None
        tenant = await s.get(Tenant, user.tenant_id)
        if tenant is None or tenant.standing == "terminated":
            return None
        return Sender(tenant, user, True)
    tenant_id, _, email = subject[len(_ADDR) :].partition(":")
    return await unlisted(s, tenant_id, email)


async def unlisted(s: AsyncSession, tenant_id: str, email: str) -> Sender | None:
    """An unlisted address of ``tenant_id`` that may (still) use ``/sent``: the tenant lets
    any address of its domains in and the address's domain is still one of them."""
    tenant = await tenant_of_domain(s, email)
    if tenant is None or tenant.id != tenant_id or tenant.sent_users == LISTED_ONLY:
        return None
    return Sender(tenant, _stand_in(tenant, email), False)
