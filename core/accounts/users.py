"""A tenant's users (admin, compliance, sender) who sign in to the portal."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from core.addresses import normalize
from core.audit import audit
from core.errors import PermanentError
from core.ids import new_id
from core.models import Tenant, User

ROLES = ("admin", "compliance", "sender")


async def add_user(session: AsyncSession, tenant: Tenant, email: str, role: str) -> User:
    if role not in ROLES:
        raise PermanentError(f"invalid role {role!r}")
    user = User(id=new_id("u_"), tenant_id=tenant.id, email=normalize(email), role=role)
    session.add(user)
    await audit(session, tenant.id, "cli", "user.add", user.id, email=user.email, role=role)
    return user
