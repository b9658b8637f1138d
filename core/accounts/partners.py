"""Partners (MSPs): created, found by id or name, listed."""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import audit
from core.errors import NotFound, PermanentError
from core.ids import new_id
from core.models import Partner

# the name of a partner or a tenant: letters, digits, space . _ -
ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$")


async def create_partner(session: AsyncSession, name: str) -> Partner:
    if not ACCOUNT_NAME.match(name):
        raise PermanentError(f"invalid partner name {name!r}")
    if (await session.execute(select(Partner).where(Partner.name == name))).scalar():
        raise PermanentError(f"partner {name!r} already exists")
    partner = Partner(id=new_id("p_"), name=name)
    session.add(partner)
    await session.flush()  # its people and keys refer to it
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
