"""A tenant's API keys: made with a label and a scope (the role the API checks: admin,
compliance or sender), shown once and stored as a SHA-256 only, listed with when each was
last used, revoked at once. Every change audited."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import audit
from core.errors import NotFound, PermanentError
from core.hashing import sha256_hex
from core.ids import new_token
from core.models import ApiKey, now

SCOPES = ("admin", "compliance", "sender")
SCOPE_WORDS = {
    "admin": "everything the tenant's admins may do",
    "compliance": "quarantine, archive and legal holds",
    "sender": "a sender's own messages",
}
USE_RECORDED_EVERY = 60.0  # last use is written at most once a minute per key


def key_id(row: ApiKey) -> str:
    """What pages name a key by: the start of its hash (never the key)."""
    return row.key_hash[:16]


async def create_key(
    session: AsyncSession, tenant_id: str, label: str, scope: str, actor: str
) -> tuple[str, ApiKey]:
    """A new key; the key itself is returned once, for the person to copy."""
    label = " ".join(label.split())
    if not label or len(label) > 100:
        raise PermanentError("give the key a name of 1 to 100 characters (what uses it)")
    if scope not in SCOPES:
        raise PermanentError(f"the scope must be one of {', '.join(SCOPES)}")
    key = "smk_" + new_token(32)
    row = ApiKey(
        key_hash=sha256_hex(key),
        tenant_id=tenant_id,
        role=scope,
        prefix=key[:8],
        label=label,
        created_by=actor[:320],
    )
    session.add(row)
    await audit(session, tenant_id, actor, "api_key.create", key_id(row), label=label, scope=scope)
    return key, row


async def list_keys(session: AsyncSession, tenant_id: str) -> list[ApiKey]:
    stmt = select(ApiKey).where(ApiKey.tenant_id == tenant_id).order_by(ApiKey.created_at.desc())
    return list((await session.execute(stmt)).scalars())


async def revoke_key(session: AsyncSession, tenant_id: str, kid: str, actor: str) -> ApiKey:
    if len(kid) != 16:
        raise NotFound("no such key")
    stmt = select(ApiKey).where(ApiKey.tenant_id == tenant_id, ApiKey.key_hash.startswith(kid))
    row = (await session.execute(stmt)).scalars().first()
    if row is None:
        raise NotFound("no such key")
    if row.revoked_at is None:
        row.revoked_at = now()
        await audit(session, tenant_id, actor, "api_key.revoke", kid, label=row.label)
    return row


def note_use(row: ApiKey) -> bool:
    """Record that ``row`` was used now, unless that was done within the last minute."""
    t = now()
    if row.last_used_at is None or t - row.last_used_at >= USE_RECORDED_EVERY:
        row.last_used_at = t
        return True
    return False
