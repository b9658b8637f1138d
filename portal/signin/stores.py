"""Where a code rests until it is used: the two stores behind :func:`portal.signin.codes.check`.

- :class:`AccessCodes`: a recipient's codes, rows of ``portal_codes`` bound to the
  ``PortalAccess`` of their link, so any browser holding the link may enter the code; the
  row counts its own tries (``failures``, the right one included) and is used up by a
  conditional ``UPDATE``.
- :class:`PendingSignin`: a typed-address door's code (``/admin``, ``/sent``, ``/pin``), held
  by the browser that asked for it: a random secret in the door's pending cookie whose
  SHA-256 keys a ``portal_sessions`` row of the door's pending kind with no tenant (so it can
  never act as a session), the identity it is for and the keyed hash of the code. The row
  counts its own tries (``tries``); it is used up by a conditional ``DELETE``.

Both count a try with ``UPDATE ... SET n = n + 1 WHERE id = ? AND n < 5`` before the code
is compared, and compare only when that statement changed the row: the database serialises
the statements, so 40 parallel guesses get at most 5 compares.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import delete, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from core.hashing import sha256_hex
from core.ids import new_id, new_token
from core.models import OneTimeCode, PortalSession, now
from portal.signin.codes import CODE_LIFETIME, MAX_FAILURES, Held, hash_code, new_code

_MAX_SECRET = 200


class AccessCodes:
    """The codes of one ``PortalAccess`` (``portal_codes``)."""

    def __init__(self, access_id: str) -> None:
        self.access_id = access_id

    async def issue(self, session: AsyncSession, key: bytes) -> str:
        """A new code, which from now on is the one that counts (the caller mails and commits)."""
        code = new_code()
        code_id = new_id("c_")
        created = now()
        session.add(
            OneTimeCode(
                id=code_id,
                access_id=self.access_id,
                code_hash=hash_code(key, code_id, code),
                created_at=created,
                expires_at=created + CODE_LIFETIME,
            )
        )
        return code

    async def newest(self, session: AsyncSession) -> Held | None:
        stmt = (
            select(OneTimeCode)
            .where(OneTimeCode.access_id == self.access_id)
            .order_by(OneTimeCode.created_at.desc(), OneTimeCode.id.desc())
            .limit(1)
        )
        row = (await session.execute(stmt)).scalars().first()
        if row is None:
            return None
        return Held(
            row.id, row.code_hash, row.expires_at, row.failures, row.used, subject=row.access_id
        )

    async def take(self, session: AsyncSession, held: Held) -> bool:
        result = cast(
            CursorResult[Any],
            await session.execute(
                update(OneTimeCode)
                .where(OneTimeCode.id == held.row_id, OneTimeCode.used.is_(False))
                .values(used=True)
            ),
        )
        return result.rowcount == 1

    async def claim(self, session: AsyncSession, held: Held) -> int | None:
        result = cast(
            CursorResult[Any],
            await session.execute(
                update(OneTimeCode)
                .where(
                    OneTimeCode.id == held.row_id,
                    OneTimeCode.used.is_(False),
                    OneTimeCode.failures < MAX_FAILURES,
                )
                .values(failures=OneTimeCode.failures + 1)
            ),
        )
        if result.rowcount != 1:
            return None
        stmt = select(OneTimeCode.failures).where(OneTimeCode.id == held.row_id)
        return int((await session.execute(stmt)).scalar_one())


class PendingSignin:
    """One browser's pending sign-in at a typed-address door (a ``portal_sessions`` row of
    kind ``kind``). ``secret`` is the pending cookie's value ("" or junk: none)."""

    def __init__(self, kind: str, secret: str) -> None:
        self.kind = kind
        self.id_hash = sha256_hex(secret) if secret and len(secret) <= _MAX_SECRET else ""

    @classmethod
    def fresh(cls, kind: str) -> tuple[PendingSignin, str]:
        """A new pending sign-in and the secret its cookie carries."""
        secret = new_token(32)
        return cls(kind, secret), secret

    async def drop(self, session: AsyncSession) -> None:
        """Only the newest pending sign-in of a browser counts: the old one goes."""
        if self.id_hash:
            await session.execute(
                delete(PortalSession).where(
                    PortalSession.id_hash == self.id_hash, PortalSession.kind == self.kind
                )
            )

    async def issue(self, session: AsyncSession, key: bytes, subject: str) -> str:
        """Store the pending sign-in for ``subject`` ("" when nobody may sign in with the
        address typed: the row exists all the same, so no page tells who may)."""
        code = new_code()
        created = now()
        session.add(
            PortalSession(
                id_hash=self.id_hash,
                tenant_id="",  # a pending sign-in is nobody's session
                email=subject,
                kind=self.kind,
                csrf_token=hash_code(key, self.id_hash, code),
                created_at=created,
                expires_at=created + CODE_LIFETIME,
            )
        )
        return code

    async def newest(self, session: AsyncSession) -> Held | None:
        """The live pending sign-in (its ``subject`` "" when nobody may sign in); None when
        there is none, it is another door's, or it has expired."""
        if not self.id_hash:
            return None
        row = await session.get(PortalSession, self.id_hash)
        if row is None or row.kind != self.kind or row.expires_at <= now():
            return None
        return Held(row.id_hash, row.csrf_token, row.expires_at, row.tries, subject=row.email)

    async def claim(self, session: AsyncSession, held: Held) -> int | None:
        result = cast(
            CursorResult[Any],
            await session.execute(
                update(PortalSession)
                .where(
                    PortalSession.id_hash == held.row_id,
                    PortalSession.kind == self.kind,
                    PortalSession.tries < MAX_FAILURES,
                    PortalSession.expires_at > now(),
                )
                .values(tries=PortalSession.tries + 1)
            ),
        )
        if result.rowcount != 1:
            return None
        stmt = select(PortalSession.tries).where(PortalSession.id_hash == held.row_id)
        return int((await session.execute(stmt)).scalar_one())

    async def take(self, session: AsyncSession, held: Held) -> bool:
        result = cast(
            CursorResult[Any],
            await session.execute(
                delete(PortalSession).where(
                    PortalSession.id_hash == held.row_id, PortalSession.kind == self.kind
                )
            ),
        )
        return result.rowcount == 1
