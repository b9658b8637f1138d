"""A tenant's mail domains: normalised (IDNA, lower case) and looked up."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import PermanentError
from core.models import TenantDomain

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def normalize_domain(domain: str) -> str:
    d = domain.strip().lower().rstrip(".")
    try:
        d = d.encode("idna").decode("ascii")
    except UnicodeError:
        raise PermanentError(f"invalid domain {domain!r}") from None
    if not _DOMAIN.match(d):
        raise PermanentError(f"invalid domain {domain!r}")
    return d


async def tenant_domains(session: AsyncSession, tenant_id: str) -> list[str]:
    stmt = select(TenantDomain.domain).where(TenantDomain.tenant_id == tenant_id)
    return sorted((await session.execute(stmt)).scalars().all())
