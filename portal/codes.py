"""One-time codes: 6 digits from :mod:`secrets`, stored only as a keyed hash, 10 minutes,
single use, 5 tries. Only the newest code of an access counts. Also what every door that
mails a code shares: how long the code mail may wait in the outbox, and the masked address
the code page shows."""

from __future__ import annotations

import dataclasses
import hmac
import secrets

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.hashing import hmac_sha256
from core.ids import new_id
from core.models import OneTimeCode, PortalAccess, now

CODE_DIGITS = 6
CODE_LIFETIME = 600.0
MAX_FAILURES = 5
CODE_MAIL_LIFETIME = 3600.0


def mask_address(address: str) -> str:
    """``alice@example.com`` → ``a***e@example.com``: enough to recognise, not to harvest."""
    local, _, domain = address.rpartition("@")
    if not local:
        return "***"
    shown = local[0] + "***" + (local[-1] if len(local) > 2 else "")
    return f"{shown}@{domain}"


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def hash_code(key: bytes, code_id: str, code: str) -> str:
    """Keyed, and bound to the row: a stolen table does not give codes away by brute force."""
    return hmac_sha256(key, f"portal-code\x00{code_id}\x00{code}".encode())


def normalize(submitted: str) -> str:
    return "".join(ch for ch in submitted if not ch.isspace() and ch != "-")


async def issue(session: AsyncSession, key: bytes, access: PortalAccess) -> str:
    """A new code for ``access`` (the caller sends it and commits)."""
    code = new_code()
    code_id = new_id("c_")
    created = now()
    session.add(
        OneTimeCode(
            id=code_id,
            access_id=access.id,
            code_hash=hash_code(key, code_id, code),
            created_at=created,
            expires_at=created + CODE_LIFETIME,
        )
    )
    return code


@dataclasses.dataclass(frozen=True)
class Outcome:
    ok: bool
    reason: str = ""  # "", "wrong", "dead" (used up, expired, too many tries), "none"
    tries_left: int = 0


async def verify(
    session: AsyncSession, key: bytes, access: PortalAccess, submitted: str
) -> Outcome:
    """Check ``submitted`` against the newest code; the caller commits."""
    stmt = (
        select(OneTimeCode)
        .where(OneTimeCode.access_id == access.id)
        .order_by(OneTimeCode.created_at.desc(), OneTimeCode.id.desc())
        .limit(1)
    )
    row = (await session.execute(stmt)).scalars().first()
    if row is None:
        return Outcome(False, "none")
    if row.used or row.failures >= MAX_FAILURES or row.expires_at <= now():
        return Outcome(False, "dead")
    given = hash_code(key, row.id, normalize(submitted))
    if hmac.compare_digest(row.code_hash, given):
        # the conditional update makes "single use" hold between concurrent requests
        result = await session.execute(
            update(OneTimeCode)
            .where(
                OneTimeCode.id == row.id,
                OneTimeCode.used.is_(False),
                OneTimeCode.failures < MAX_FAILURES,
            )
            .values(used=True)
        )
        if result.rowcount == 1:
            return Outcome(True)
        return Outcome(False, "dead")
    await session.execute(
        update(OneTimeCode)
        .where(OneTimeCode.id == row.id)
        .values(failures=OneTimeCode.failures + 1)
    )
    await session.refresh(row)
    left = max(0, MAX_FAILURES - row.failures)
    return Outcome(False, "wrong" if left else "dead", left)
