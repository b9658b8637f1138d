"""Doors where people type their address (``/admin``, ``/sent``, ``/pin``): every address
gets the same "code sent" page and a pending sign-in (:class:`PendingSignin`); only an
address that may sign in gets a mail. Until the code is entered the browser holds only the
pending cookie; the code opens a session (:func:`verify`, the code-check step every such
door shares: only who the pending sign-in's subject is differs)."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core.accounts.models import PartnerUser
from core.audit import audit
from core.hashing import sha256_hex
from core.models import User, now
from portal.forms import field
from portal.signin import codes, devices, passkeys
from portal.signin.codes import MAX_FAILURES
from portal.signin.steps import TOO_MANY, Limits, count, limited, open_session, pre_checked
from portal.signin.stores import PendingSignin
from portal.state import PortalState, client_ip


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


@dataclasses.dataclass(frozen=True)
class Identity:
    """Who a pending sign-in's subject is: the session's tenant ("" for none) and address,
    the target of the audit entries, whether they may still sign in, and what else the
    ``{door}.signin`` entry records."""

    tenant_id: str
    email: str
    target: str
    allowed: bool = True
    signin_details: dict[str, Any] = dataclasses.field(default_factory=dict)


async def verify(
    request: Request,
    door: AddressDoor,
    *,
    identify: Callable[[AsyncSession, str], Awaitable[Identity | None]],
    session_kind: str,
    home: str,
    wrong: Callable[[PortalState, str], Response],
) -> Response:
    """``POST {door}/verify``: check the code typed against the browser's pending sign-in
    (rate-limited, CSRF by the pre-session token), and open a session of ``session_kind``
    landing on ``home`` when it is right and ``identify(session, subject)`` may sign in;
    otherwise count the failure and answer ``wrong(state, nonce)``. Both are audited."""
    st, form, nonce = await pre_checked(request, f"{door.name}-verify")
    ip = client_ip(request)
    found = pending_of(request, door, ip)
    if found is None:
        return RedirectResponse(door.start_path, status_code=303)
    pending, buckets = found
    async with st.services.db.session() as s:
        if await limited(s, buckets):
            return st.pages.error(429, headers=TOO_MANY)
        held = await pending.newest(s)
        if held is None:
            return RedirectResponse(door.start_path, status_code=303)
        who = await identify(s, held.subject)
        allowed = who is not None and who.allowed
        if who is not None and await passkeys.code_refused(
            s, who.tenant_id, who.email, passkeys.relying_party(request).rp_id
        ):
            allowed = False  # the tenant asks for the passkey (it was added since the code)
        outcome = await codes.check(
            s, st.code_key, pending, held, field(form, "code"), allowed=allowed
        )
        if outcome.ok and who is not None:
            response = await open_session(
                s,
                request,
                tenant_id=who.tenant_id,
                email=who.email,
                kind=session_kind,
                home=home,
                pending_cookie=door.pending_cookie,
            )
            if who.tenant_id and field(form, "remember") == "yes":
                await devices.remember(s, request, response, who.tenant_id, who.email)
            tenant = who.tenant_id or None
            if tenant and session_kind in ("admin", "sender"):  # /admin/users shows it
                await s.execute(
                    update(User)
                    .where(User.tenant_id == tenant, func.lower(User.email) == who.email)
                    .values(last_signin_at=now())
                )
            elif session_kind == "partner":  # /partner/people shows it
                await s.execute(
                    update(PartnerUser)
                    .where(PartnerUser.id == who.target)
                    .values(last_signin_at=now())
                )
            action = f"{door.name}.signin"
            await audit(s, tenant, who.email, action, who.target, ip=ip, **who.signin_details)
            await s.commit()
            return response
        await count(s, buckets)
        if who is not None:
            await audit(
                s,
                who.tenant_id or None,
                who.email,
                f"{door.name}.code.failed",
                who.target,
                ip=ip,
                reason=outcome.reason,
                checked=outcome.checked,
            )
        await s.commit()
    return wrong(st, nonce)
