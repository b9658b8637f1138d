"""``/admin`` and ``/sent`` without a code: "Sign in with a passkey" (discoverable: the
passkey's user handle names the identity, no address typed) and "Continue as ..." for the
identities this browser is remembered for. Whoever the passkey or device names must still be
let in by the door, checked the way the code path checks it (role, tenant standing, a
listed or unlisted sender); the session is the door's, of factor ``passkey`` or ``device``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from core.audit import audit
from core.hashing import sha256_hex
from core.models import Tenant, User, now
from portal.admin.doors import ADMIN_DOOR, SENDER_DOOR, Door
from portal.forms import field
from portal.hosts import foreign_here
from portal.sent.senders import unlisted
from portal.signin import devices, passkeys
from portal.signin.by_address import Identity
from portal.signin.ceremony import TOO_MANY_TRIES, failed, json_redirect
from portal.signin.codes import mask_address
from portal.signin.steps import TOO_MANY, count, limited, open_session, pre_checked
from portal.state import client_ip

NOT_HERE = "This passkey does not let you sign in here. Use an emailed code instead."


async def door_identity(
    s: AsyncSession, request: Request, door: Door, tenant_id: str, email: str
) -> Identity | None:
    """Who (tenant, address) signs in as at ``door``, or None when the door would not let
    them in with a code either."""
    if await foreign_here(s, request, tenant_id):
        return None
    stmt = (
        select(User)
        .join(Tenant, Tenant.id == User.tenant_id)
        .where(
            User.tenant_id == tenant_id,
            func.lower(User.email) == email,
            User.role.in_(door.roles),
            Tenant.standing != "terminated",
        )
    )
    user = (await s.execute(stmt.limit(1))).scalars().first()
    if user is not None:
        details = {"listed": True} if door is SENDER_DOOR else {}
        return Identity(user.tenant_id, user.email.lower(), user.id, signin_details=details)
    if door is SENDER_DOOR:
        sender = await unlisted(s, tenant_id, email)
        if sender is not None:
            return Identity(
                tenant_id, sender.user.email, sender.user.email, signin_details={"listed": False}
            )
    return None


async def remembered_here(s: AsyncSession, request: Request, door: Door) -> list[dict[str, str]]:
    """The identities this browser is remembered for that ``door`` lets in (for its page)."""
    out = []
    for row in await devices.remembered(s, request):
        if await door_identity(s, request, door, row.tenant_id, row.email) is not None:
            out.append({"id": row.id, "masked": mask_address(row.email)})
    return out


async def _signed_in(
    s: AsyncSession, request: Request, door: Door, who: Identity, factor: str, **details: Any
) -> Response:
    response = await open_session(
        s,
        request,
        tenant_id=who.tenant_id,
        email=who.email,
        kind=door.session_kinds[0],
        home=door.home,
        pending_cookie=door.pending_cookie,
        factor=factor,
    )
    await s.execute(
        update(User)
        .where(User.tenant_id == who.tenant_id, func.lower(User.email) == who.email)
        .values(last_signin_at=now())
    )
    await audit(
        s,
        who.tenant_id,
        who.email,
        f"{door.name}.signin",
        who.target,
        ip=client_ip(request),
        method=factor,
        **who.signin_details,
        **details,
    )
    await s.commit()
    return response


def _buckets(door: Door, nonce: str, ip: str) -> list[tuple[str, int]]:
    return door.signin.limits.failures(sha256_hex(f"passkey\x00{nonce}"), ip)


async def passkey_options(request: Request, door: Door = ADMIN_DOOR) -> Response:
    st, _form, nonce = await pre_checked(request, f"{door.name}-login")
    rp = passkeys.relying_party(request)
    async with st.services.db.session() as s:
        if await limited(s, _buckets(door, nonce, client_ip(request))):
            return failed(TOO_MANY_TRIES, 429)
        body = await passkeys.authentication_options(
            s, rp, purpose=f"door:{door.name}", binding=sha256_hex(nonce)
        )
        await s.commit()
    return JSONResponse(body)


async def passkey_verify(request: Request, door: Door = ADMIN_DOOR) -> Response:
    st, form, nonce = await pre_checked(request, f"{door.name}-login")
    rp = passkeys.relying_party(request)
    ip = client_ip(request)
    buckets = _buckets(door, nonce, ip)
    async with st.services.db.session() as s:
        if await limited(s, buckets):
            return failed(TOO_MANY_TRIES, 429)
        try:
            row = await passkeys.take_challenge(
                s,
                field(form, "ticket"),
                purpose=f"door:{door.name}",
                binding=sha256_hex(nonce),
                rp_id=rp.rp_id,
            )
            passkey = await passkeys.authenticate(s, row, rp, passkeys.credential_field(form))
            who = await door_identity(s, request, door, passkey.tenant_id, passkey.email)
            if who is None:
                raise passkeys.PasskeyError(NOT_HERE)
        except passkeys.PasskeyError as exc:
            await count(s, buckets)
            await s.commit()
            return failed(str(exc))
        response = await _signed_in(s, request, door, who, "passkey", passkey=passkey.id)
    return json_redirect(response)


async def continue_device(request: Request, door: Door = ADMIN_DOOR) -> Response:
    st, form, nonce = await pre_checked(request, f"{door.name}-login")
    ip = client_ip(request)
    async with st.services.db.session() as s:
        if await limited(s, _buckets(door, nonce, ip)):
            return st.pages.error(429, headers=TOO_MANY)
        wanted = field(form, "device")
        row = next((d for d in await devices.remembered(s, request) if d.id == wanted), None)
        who = await door_identity(s, request, door, row.tenant_id, row.email) if row else None
        if row is None or who is None:
            return RedirectResponse(door.login_path, status_code=303)
        await devices.used(s, row)
        return await _signed_in(s, request, door, who, "device", device=row.id)


async def sent_passkey_options(request: Request) -> Response:
    return await passkey_options(request, SENDER_DOOR)


async def sent_passkey_verify(request: Request) -> Response:
    return await passkey_verify(request, SENDER_DOOR)


async def sent_continue_device(request: Request) -> Response:
    return await continue_device(request, SENDER_DOOR)
