"""Doors where people type their address (``/admin``, ``/sent``, ``/pin``): every address
gets the same "code sent" page and a pending sign-in (:class:`PendingSignin`); only an
address that may sign in gets a mail. Until the code is entered the browser holds only the
pending cookie; the code opens a session."""

from __future__ import annotations

import dataclasses

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from core.hashing import sha256_hex
from portal.signin.codes import MAX_FAILURES
from portal.signin.steps import Limits
from portal.signin.stores import PendingSignin


@dataclasses.dataclass(frozen=True)
class AddressDoor:
    """``name`` prefixes the door's CSRF purposes (``{name}-login``, ``{name}-verify``) and
    rate-limit buckets; each door has its own pending kind and cookie, so a code asked for at
    one door cannot be used at another; ``start_path`` is where a browser without a live
    pending sign-in starts again."""

    name: str
    pending_kind: str
    pending_cookie: str
    start_path: str

    @property
    def limits(self) -> Limits:
        return Limits(f"{self.name}-", failures_per_subject=MAX_FAILURES)

    def send_limits(self, email: str, ip: str) -> list[tuple[str, int]]:
        return self.limits.sends(sha256_hex(email), ip)


async def start(
    session: AsyncSession, request: Request, door: AddressDoor, key: bytes, subject: str
) -> tuple[str, str]:
    """Replace the browser's pending sign-in at ``door`` with a new one for ``subject`` (""
    when nobody may sign in with the address typed); returns (cookie secret, code)."""
    await PendingSignin(door.pending_kind, request.cookies.get(door.pending_cookie) or "").drop(
        session
    )
    pending, secret = PendingSignin.fresh(door.pending_kind)
    return secret, await pending.issue(session, key, subject)


def pending_of(
    request: Request, door: AddressDoor, ip: str
) -> tuple[PendingSignin, list[tuple[str, int]]] | None:
    """The browser's pending sign-in at ``door`` and its failure limits; None without one."""
    secret = request.cookies.get(door.pending_cookie) or ""
    pending = PendingSignin(door.pending_kind, secret)
    if not pending.id_hash:
        return None
    return pending, door.limits.failures(pending.id_hash, ip)
