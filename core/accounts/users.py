"""A tenant's users (admin, compliance, sender) who sign in to the portal: added (by the CLI
or invited from ``/admin/users``), given another role, removed — one service for both, each
change audited with who made it. The last admin of a tenant can be neither removed nor
demoted, so a tenant never locks itself out of its console."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.accounts.trials import check_nfr_users
from core.addresses import normalize
from core.audit import audit
from core.errors import NotFound, PermanentError
from core.ids import new_id
from core.models import PortalSession, Tenant, User

ROLES = ("admin", "compliance", "sender")
ROLE_WORDS = {
    "admin": "an admin (runs the tenant: policy, users, branding, settings)",
    "compliance": "a compliance officer (quarantine, archive, audit log)",
    "sender": "a sender (their own sent messages and secure compose)",
}


async def find_user(session: AsyncSession, tenant_id: str, email: str) -> User | None:
    stmt = select(User).where(
        User.tenant_id == tenant_id, func.lower(User.email) == normalize(email)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def add_user(
    session: AsyncSession, tenant: Tenant, email: str, role: str, actor: str = "cli"
) -> User:
    if role not in ROLES:
        raise PermanentError(f"invalid role {role!r}")
    if await find_user(session, tenant.id, email) is not None:
        raise PermanentError(f"{normalize(email)} is already a user of {tenant.name}")
    await check_nfr_users(session, tenant)
    user = User(
        id=new_id("u_"),
        tenant_id=tenant.id,
        email=normalize(email),
        role=role,
        invited_by="" if actor == "cli" else actor,
    )
    session.add(user)
    await audit(session, tenant.id, actor, "user.add", user.id, email=user.email, role=role)
    return user


async def list_users(session: AsyncSession, tenant_id: str) -> list[User]:
    stmt = select(User).where(User.tenant_id == tenant_id).order_by(func.lower(User.email))
    return list((await session.execute(stmt)).scalars())


async def _user(session: AsyncSession, tenant_id: str, user_id: str) -> User:
    user = await session.get(User, user_id[:40])
    if user is None or user.tenant_id != tenant_id:
        raise NotFound("no such user")
    return user


async def _other_admins(session: AsyncSession, tenant_id: str, user_id: str) -> int:
    stmt = select(func.count()).where(
        User.tenant_id == tenant_id, User.role == "admin", User.id != user_id
    )
    return int((await session.execute(stmt)).scalar() or 0)


async def change_role(
    session: AsyncSession, tenant_id: str, user_id: str, role: str, actor: str
) -> User:
    if role not in ROLES:
        raise PermanentError(f"invalid role {role!r}")
    user = await _user(session, tenant_id, user_id)
    if user.role == role:
        return user
    if user.role == "admin" and not await _other_admins(session, tenant_id, user.id):
        raise PermanentError(f"{user.email} is the last admin; make someone else an admin first")
    before, user.role = user.role, role
    # sessions opened under the old role end: the next page asks them to sign in again
    await _end_sessions(session, tenant_id, user.email)
    await audit(
        session, tenant_id, actor, "user.role", user.id, email=user.email, before=before, role=role
    )
    return user


async def remove_user(session: AsyncSession, tenant_id: str, user_id: str, actor: str) -> User:
    user = await _user(session, tenant_id, user_id)
    if user.role == "admin" and not await _other_admins(session, tenant_id, user.id):
        raise PermanentError(f"{user.email} is the last admin; make someone else an admin first")
    await session.delete(user)
    await _end_sessions(session, tenant_id, user.email)
    await audit(session, tenant_id, actor, "user.remove", user.id, email=user.email)
    return user


async def _end_sessions(session: AsyncSession, tenant_id: str, email: str) -> None:
    await session.execute(
        delete(PortalSession).where(
            PortalSession.tenant_id == tenant_id,
            PortalSession.email == normalize(email),
            PortalSession.kind.in_(("admin", "sender")),
        )
    )
