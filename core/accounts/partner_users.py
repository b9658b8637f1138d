"""Who works for a partner: partner admins (everything in ``/partner``: tenants, plans,
users, keys, the default brand) and partner technicians (watch tenants, set them up, open
their consoles). Added by the operator's CLI or by a partner admin; each change audited. A
partner always keeps one partner admin. Also the partner's API keys (scope ``partner``)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.accounts.models import PARTNER_ROLES, PartnerApiKey, PartnerUser
from core.addresses import normalize, problem
from core.audit import audit
from core.errors import NotFound, PermanentError
from core.hashing import sha256_hex
from core.ids import new_id, new_token
from core.models import Partner, now

ROLE_WORDS = {
    "partner-admin": "a partner admin (tenants, plans, people, keys and the default brand)",
    "partner-tech": "a partner technician (watches and sets up tenants, opens their consoles)",
}
USE_RECORDED_EVERY = 60.0


async def add_partner_user(
    session: AsyncSession, partner: Partner, email: str, role: str, actor: str = "cli"
) -> PartnerUser:
    if role not in PARTNER_ROLES:
        raise PermanentError(f"the role must be one of {', '.join(PARTNER_ROLES)}")
    address = normalize(email)
    if problem(address) is not None:
        raise PermanentError(f"{email!r} is not an email address")
    if await find_partner_user(session, partner.id, address) is not None:
        raise PermanentError(f"{address} already works for {partner.name}")
    user = PartnerUser(
        id=new_id("pu_"),
        partner_id=partner.id,
        email=address,
        role=role,
        invited_by="" if actor == "cli" else actor,
    )
    session.add(user)
    await audit(session, partner.id, actor, "partner.user.add", user.id, email=address, role=role)
    return user


async def find_partner_user(
    session: AsyncSession, partner_id: str, email: str
) -> PartnerUser | None:
    stmt = select(PartnerUser).where(
        PartnerUser.partner_id == partner_id, func.lower(PartnerUser.email) == normalize(email)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def partner_users_by_email(session: AsyncSession, email: str) -> list[PartnerUser]:
    stmt = select(PartnerUser).where(func.lower(PartnerUser.email) == normalize(email))
    return list((await session.execute(stmt)).scalars())


async def list_partner_users(session: AsyncSession, partner_id: str) -> list[PartnerUser]:
    stmt = (
        select(PartnerUser)
        .where(PartnerUser.partner_id == partner_id)
        .order_by(func.lower(PartnerUser.email))
    )
    return list((await session.execute(stmt)).scalars())


async def _user(session: AsyncSession, partner_id: str, user_id: str) -> PartnerUser:
    user = await session.get(PartnerUser, user_id[:40])
    if user is None or user.partner_id != partner_id:
        raise NotFound("no such person")
    return user


async def _other_admins(session: AsyncSession, user: PartnerUser) -> int:
    stmt = select(func.count()).where(
        PartnerUser.partner_id == user.partner_id,
        PartnerUser.role == "partner-admin",
        PartnerUser.id != user.id,
    )
    return int((await session.execute(stmt)).scalar() or 0)


async def remove_partner_user(
    session: AsyncSession, partner_id: str, user_id: str, actor: str
) -> PartnerUser:
    user = await _user(session, partner_id, user_id)
    if user.role == "partner-admin" and not await _other_admins(session, user):
        raise PermanentError("the last partner admin cannot be removed; add another first")
    await session.delete(user)
    await audit(session, partner_id, actor, "partner.user.remove", user.id, email=user.email)
    return user


# --- the partner's API keys ------------------------------------------------------------------


def partner_key_id(row: PartnerApiKey) -> str:
    return row.key_hash[:16]


async def create_partner_key(
    session: AsyncSession, partner_id: str, label: str, actor: str
) -> tuple[str, PartnerApiKey]:
    """A new key of scope ``partner``; the key itself is returned once."""
    label = " ".join(label.split())
    if not label or len(label) > 100:
        raise PermanentError("give the key a name of 1 to 100 characters (what uses it)")
    key = "smp_" + new_token(32)
    row = PartnerApiKey(
        key_hash=sha256_hex(key),
        partner_id=partner_id,
        prefix=key[:8],
        label=label,
        created_by=actor[:320],
    )
    session.add(row)
    await audit(
        session, partner_id, actor, "partner.api_key.create", partner_key_id(row), label=label
    )
    return key, row


async def list_partner_keys(session: AsyncSession, partner_id: str) -> list[PartnerApiKey]:
    stmt = (
        select(PartnerApiKey)
        .where(PartnerApiKey.partner_id == partner_id)
        .order_by(PartnerApiKey.created_at.desc())
    )
    return list((await session.execute(stmt)).scalars())


async def revoke_partner_key(
    session: AsyncSession, partner_id: str, kid: str, actor: str
) -> PartnerApiKey:
    stmt = select(PartnerApiKey).where(
        PartnerApiKey.partner_id == partner_id, PartnerApiKey.key_hash.startswith(kid[:16])
    )
    row = (await session.execute(stmt)).scalars().first() if len(kid) == 16 else None
    if row is None:
        raise NotFound("no such key")
    if row.revoked_at is None:
        row.revoked_at = now()
        await audit(session, partner_id, actor, "partner.api_key.revoke", kid, label=row.label)
    return row


async def authenticate_partner_key(
    session: AsyncSession, key: str
) -> tuple[Partner, PartnerApiKey] | None:
    """The partner of a bearer key of scope ``partner``; None for an unknown or revoked one."""
    row = await session.get(PartnerApiKey, sha256_hex(key.strip()))
    if row is None or row.revoked_at is not None:
        return None
    partner = await session.get(Partner, row.partner_id)
    if partner is None:
        return None
    t = now()
    if row.last_used_at is None or t - row.last_used_at >= USE_RECORDED_EVERY:
        row.last_used_at = t
        await session.commit()
    return partner, row
