"""Recipients' OpenPGP public keys and S/MIME certificates known to a tenant.

The database is the directory (so every process and machine sees the same keys); a
tenant's GnuPG home is only a cache built from it.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import RecipientKey, now


async def usable_keys(
    session: AsyncSession, tenant_id: str, email: str, kind: str | None = None
) -> Sequence[RecipientKey]:
    """The tenant's unexpired keys for ``email`` (newest first), of one kind or both."""
    stmt = (
        select(RecipientKey)
        .where(
            RecipientKey.tenant_id == tenant_id,
            RecipientKey.email == email.strip().lower(),
            or_(RecipientKey.not_after.is_(None), RecipientKey.not_after > now()),
        )
        .order_by(RecipientKey.created_at.desc())
    )
    if kind is not None:
        stmt = stmt.where(RecipientKey.kind == kind)
    return (await session.execute(stmt)).scalars().all()


async def methods_available(session: AsyncSession, tenant_id: str, email: str) -> set[str]:
    """Which of ``pgp`` and ``smime`` the tenant can encrypt to ``email`` with now."""
    return {k.kind for k in await usable_keys(session, tenant_id, email)}
