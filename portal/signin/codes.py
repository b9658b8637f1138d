"""The one-time code and its check: 6 digits from :mod:`secrets`, stored only as a keyed hash
bound to the row that holds it, 10 minutes, single use (a conditional statement only one
request can win), 5 tries (each counted by a conditional statement before the code is
compared, so parallel guesses cannot share one count), and only the newest code counts.
Where a code rests differs by door (:mod:`portal.signin.stores`); how it is checked does
not (:func:`check`)."""

from __future__ import annotations

import dataclasses
import hmac
import secrets
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from core.hashing import hmac_sha256
from core.models import now

CODE_DIGITS = 6
CODE_LIFETIME = 600.0
MAX_FAILURES = 5
CODE_MAIL_LIFETIME = 3600.0  # how long a code mail may wait in the outbox


def mask_address(address: str) -> str:
    """``alice@example.com`` → ``a***e@example.com``: enough to recognise, not to harvest."""
    local, _, domain = address.rpartition("@")
    if not local:
        return "***"
    shown = local[0] + "***" + (local[-1] if len(local) > 2 else "")
    return f"{shown}@{domain}"


def minutes() -> int:
    """The code's lifetime as the pages and mails say it."""
    return int(CODE_LIFETIME // 60)


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def hash_code(key: bytes, row_id: str, code: str) -> str:
    """Keyed, and bound to the row: a stolen table does not give codes away by brute force."""
    return hmac_sha256(key, f"portal-code\x00{row_id}\x00{code}".encode())


def normalize(submitted: str) -> str:
    return "".join(ch for ch in submitted if not ch.isspace() and ch != "-")


@dataclasses.dataclass(frozen=True)
class Held:
    """The newest code of one identity, as the check sees it, wherever it rests."""

    row_id: str  # what the hash is bound to
    code_hash: str
    expires_at: float
    failures: int
    used: bool = False
    subject: str = ""  # whom it is for, as the store records it


class Store(Protocol):
    """Where a door's codes rest (:mod:`portal.signin.stores`)."""

    async def newest(self, session: AsyncSession) -> Held | None: ...

    async def claim(self, session: AsyncSession, held: Held) -> int | None:
        """Count one try at ``held`` before its code is compared, in one conditional
        statement; the tries now, or None when it has none left (nothing may be compared)."""
        ...

    async def take(self, session: AsyncSession, held: Held) -> bool:
        """Use ``held`` up; True for exactly one of any number of concurrent callers."""
        ...


@dataclasses.dataclass(frozen=True)
class Outcome:
    ok: bool
    reason: str = ""  # "", "wrong", "dead" (used up, expired, too many tries), "none"
    tries_left: int = 0
    checked: bool = False  # the code was compared (a try was counted first)


async def check(
    session: AsyncSession,
    key: bytes,
    store: Store,
    held: Held | None,
    submitted: str,
    *,
    allowed: bool = True,
) -> Outcome:
    """Check ``submitted`` against ``held`` (the store's newest code); the caller commits.
    ``allowed=False`` (the identity may no longer sign in) makes any code a wrong one."""
    if held is None:
        return Outcome(False, "none")
    if held.used or held.failures >= MAX_FAILURES or held.expires_at <= now():
        return Outcome(False, "dead")
    # count the try first: of any number of concurrent tries, at most MAX_FAILURES get past
    tries = await store.claim(session, held)
    if tries is None:
        return Outcome(False, "dead")
    given = hash_code(key, held.row_id, normalize(submitted))
    if hmac.compare_digest(held.code_hash, given) and allowed:
        if await store.take(session, held):
            return Outcome(True, checked=True)
        return Outcome(False, "dead", checked=True)
    left = max(0, MAX_FAILURES - tries)
    return Outcome(False, "wrong" if left else "dead", left, checked=True)
