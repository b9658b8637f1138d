"""Server-side sessions: the cookie carries 256 random bits, the database only their
SHA-256, bound to one tenant and one recipient address, with its own CSRF token."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from core.hashing import sha256_hex
from core.ids import new_token
from core.models import PortalSession, now
from portal.hosts import foreign_here
from portal.security import SESSION_COOKIE

IDLE_TIMEOUT = 3600.0  # an hour without a request ends it
ABSOLUTE_TIMEOUT = 12 * 3600.0  # and it never lasts longer than 12 hours
_SLIDE_AFTER = 60.0  # write the new idle deadline at most once a minute


async def create(
    session: AsyncSession,
    tenant_id: str,
    email: str,
    kind: str = "recipient",
    factor: str = "code",
) -> tuple[str, PortalSession]:
    """A new session opened by ``factor`` (code | passkey | device); returns the cookie value
    (shown only to the browser) and the row."""
    secret = new_token(32)
    created = now()
    row = PortalSession(
        id_hash=sha256_hex(secret),
        tenant_id=tenant_id,
        email=email.strip().lower(),
        kind=kind,
        factor=factor,
        csrf_token=new_token(32),
        created_at=created,
        expires_at=created + IDLE_TIMEOUT,
    )
    session.add(row)
    return secret, row


async def load(session: AsyncSession, request: Request) -> PortalSession | None:
    """The live session of this request, its idle deadline moved on; None if there is none."""
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret or len(secret) > 200:
        return None
    row = await session.get(PortalSession, sha256_hex(secret))
    t = now()
    if row is None or row.expires_at <= t or row.created_at + ABSOLUTE_TIMEOUT <= t:
        return None
    if await foreign_here(session, request, row.tenant_id):  # another tenant's portal host
        return None
    deadline = min(t + IDLE_TIMEOUT, row.created_at + ABSOLUTE_TIMEOUT)
    if deadline - row.expires_at > _SLIDE_AFTER:
        row.expires_at = deadline
        await session.commit()
    return row


async def destroy(session: AsyncSession, request: Request) -> None:
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        await session.execute(
            delete(PortalSession).where(PortalSession.id_hash == sha256_hex(secret))
        )


def set_cookie(response: Response, secret: str) -> None:
    # no Max-Age: the browser forgets it when it closes; the server enforces the timeouts
    response.set_cookie(
        SESSION_COOKIE, secret, path="/", secure=True, httponly=True, samesite="lax"
    )


def clear_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="lax")
