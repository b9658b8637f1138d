"""Signing in to ``/admin`` (and to ``/sent``): email → one-time code through the outbox →
a server-side session bound to one tenant and one user.

Two doors share this machinery (:class:`portal.admin.doors.Door`): ``/admin/login`` lets
in admin and compliance users with a session of kind ``admin``; ``/sent/login`` lets in any
tenant user (sender, admin, compliance) with a session of kind ``sender`` that opens only
``/sent`` — an admin page answers such a session 404. Each door has its own pending kind
and cookie, so a code asked for at one door cannot be used at the other.

The same rules as the recipient side (SPEC §5). Every address gets the same "code sent"
page; only a tenant's admin or compliance user gets a mail. Until the code is entered the
browser holds a *pending* sign-in: a random secret in its own cookie whose SHA-256 keys a
``PortalSession`` row of kind ``admin-code`` with no tenant and no address (so it can never
act as a session anywhere), the user's id and the keyed hash of the code. The code is single
use (the row is deleted by a conditional DELETE), lives 10 minutes and allows 5 tries.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any, cast

from sqlalchemy import delete, func, select
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from branding.mail import compose
from branding.notifications import render_code_email
from core import outbox
from core.addresses import normalize, problem
from core.audit import audit
from core.hashing import sha256_hex
from core.ids import new_token
from core.models import PortalSession, Tenant, User, now
from portal import codes, ratelimit, sessions
from portal.admin.doors import ADMIN_DOOR, ADMIN_ROLES, Door, checked_form, current_user
from portal.codes import CODE_MAIL_LIFETIME, mask_address
from portal.forms import field, read_form
from portal.security import PRE_COOKIE, check_pre_session, pre_session_token, same_origin_request
from portal.state import PortalState, client_ip, portal

log = logging.getLogger("sealmail.portal.admin")
SENDS_PER_ADDRESS = 5  # per hour
SENDS_PER_IP = 20
FAILURES_PER_PENDING = codes.MAX_FAILURES
FAILURES_PER_IP = 30


def _nonce(request: Request) -> str | None:
    value = request.cookies.get(PRE_COOKIE)
    return value if value and len(value) <= 64 else None


def _login_page(
    st: PortalState,
    door: Door,
    nonce: str,
    *,
    error: str = "",
    status: int = 200,
    email: str = "",
) -> Response:
    ctx = {"csrf": pre_session_token(st.csrf_key, nonce, f"{door.name}-login"), "error": error}
    ctx["email"] = email
    return st.pages.render(door.login_template, ctx, status=status)


def _code_page(
    st: PortalState, door: Door, nonce: str, email: str, *, error: str = "", status: int = 200
) -> Response:
    ctx: dict[str, Any] = {
        "csrf": pre_session_token(st.csrf_key, nonce, f"{door.name}-verify"),
        "masked": mask_address(email) if email else "",
        "digits": codes.CODE_DIGITS,
        "minutes": int(codes.CODE_LIFETIME // 60),
        "error": error,
    }
    return st.pages.render(door.code_template, ctx, status=status)


def _with_nonce(request: Request, response: Response, nonce: str) -> Response:
    if nonce != request.cookies.get(PRE_COOKIE):
        response.set_cookie(
            PRE_COOKIE, nonce, path="/", secure=True, httponly=True, samesite="strict"
        )
    return response


async def login_form(request: Request, door: Door = ADMIN_DOOR) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        if await current_user(s, request, door) is not None:
            return RedirectResponse(door.home, status_code=303)
    nonce = _nonce(request) or new_token(24)
    return _with_nonce(request, _login_page(st, door, nonce), nonce)


async def _pre_checked(request: Request, purpose: str) -> tuple[PortalState, FormData]:
    st = portal(request)
    if not same_origin_request(request, st.origins):
        raise HTTPException(403)
    form = await read_form(request)
    if not check_pre_session(st.csrf_key, _nonce(request), field(form, "csrf"), purpose):
        raise HTTPException(403)
    return st, form


async def _officer(
    s: AsyncSession, email: str, roles: tuple[str, ...] = ADMIN_ROLES
) -> User | None:
    stmt = (
        select(User)
        .join(Tenant, Tenant.id == User.tenant_id)
        .where(
            func.lower(User.email) == email,
            User.role.in_(roles),
            Tenant.standing != "terminated",
        )
        .order_by(Tenant.name)
        .limit(1)
    )
    return (await s.execute(stmt)).scalars().first()


async def send_code(request: Request, door: Door = ADMIN_DOOR) -> Response:
    st, form = await _pre_checked(request, f"{door.name}-login")
    nonce = _nonce(request) or ""
    email = normalize(field(form, "email"))
    if problem(email) is not None:
        return _login_page(
            st, door, nonce, error="Enter your email address.", status=400, email=email
        )
    ip = client_ip(request)
    buckets = [
        (f"{door.name}-code-send:{sha256_hex(email)}", SENDS_PER_ADDRESS),
        (f"{door.name}-code-send-ip:{ip}", SENDS_PER_IP),
    ]
    secret = new_token(32)
    async with st.services.db.session() as s:
        if await ratelimit.exceeded(s, buckets, ratelimit.HOUR):
            return st.pages.error(429, headers={"Retry-After": "3600"})
        await _drop_pending(s, door, request.cookies.get(door.pending_cookie))
        user = await _officer(s, email, door.roles)
        id_hash = sha256_hex(secret)
        code = codes.new_code()
        created = now()
        s.add(
            PortalSession(
                id_hash=id_hash,
                tenant_id="",  # a pending sign-in is nobody's session
                email=user.id if user else "",
                kind=door.pending_kind,
                csrf_token=codes.hash_code(st.code_key, id_hash, code),
                created_at=created,
                expires_at=created + codes.CODE_LIFETIME,
            )
        )
        if user is not None:
            await _mail_code(st, s, user, code)
            await audit(s, user.tenant_id, user.email, f"{door.name}.code.sent", user.id, ip=ip)
        else:
            log.info("%s sign-in asked for an address that may not sign in", door.name)
        await ratelimit.record(s, [b for b, _ in buckets], ratelimit.HOUR)
        await s.commit()
    response = _code_page(st, door, nonce, email)
    response.set_cookie(
        door.pending_cookie, secret, path="/", secure=True, httponly=True, samesite="strict"
    )
    return response


async def _drop_pending(s: AsyncSession, door: Door, secret: str | None) -> None:
    """Only the newest pending sign-in of a browser counts."""
    if secret and len(secret) <= 200:
        await s.execute(
            delete(PortalSession).where(
                PortalSession.id_hash == sha256_hex(secret),
                PortalSession.kind == door.pending_kind,
            )
        )


async def _mail_code(st: PortalState, s: AsyncSession, user: User, code: str) -> None:
    tenant = await s.get(Tenant, user.tenant_id)
    assert tenant is not None
    mail_from = tenant.notification_from or st.settings.sender_address
    raw = compose(
        from_addr=mail_from,
        to_addr=user.email,
        rendered=render_code_email(
            tenant, code=code, recipient=user.email, minutes=int(codes.CODE_LIFETIME // 60)
        ),
        headers={"Auto-Submitted": "auto-generated"},
    )
    sealed = await st.services.vault.seal(s, tenant.id, raw, kind="outbound")
    await outbox.enqueue(
        s,
        kind="code",
        tenant_id=tenant.id,
        mail_from=mail_from,
        recipients=[user.email],
        object_id=sealed.id,
        lifetime=CODE_MAIL_LIFETIME,
    )


_WRONG = "That code is not right, or it can no longer be used. Try again or ask for a new one."


async def verify(request: Request, door: Door = ADMIN_DOOR) -> Response:
    st, form = await _pre_checked(request, f"{door.name}-verify")
    nonce = _nonce(request) or ""
    secret = request.cookies.get(door.pending_cookie) or ""
    ip = client_ip(request)
    if not secret or len(secret) > 200:
        return RedirectResponse(door.login_path, status_code=303)
    id_hash = sha256_hex(secret)
    buckets = [
        (f"{door.name}-verify-fail:{id_hash}", FAILURES_PER_PENDING),
        (f"{door.name}-verify-fail-ip:{ip}", FAILURES_PER_IP),
    ]
    async with st.services.db.session() as s:
        if await ratelimit.exceeded(s, buckets, ratelimit.HOUR):
            return st.pages.error(429, headers={"Retry-After": "3600"})
        row = await s.get(PortalSession, id_hash)
        if row is None or row.kind != door.pending_kind or row.expires_at <= now():
            return RedirectResponse(door.login_path, status_code=303)
        given = codes.hash_code(st.code_key, id_hash, codes.normalize(field(form, "code")))
        user = await s.get(User, row.email) if row.email else None
        if (
            user is not None
            and user.role in door.roles
            and hmac.compare_digest(row.csrf_token, given)
        ):
            taken = cast(
                CursorResult[Any],
                await s.execute(
                    delete(PortalSession).where(
                        PortalSession.id_hash == id_hash, PortalSession.kind == door.pending_kind
                    )
                ),
            )
            if taken.rowcount == 1:
                await sessions.destroy(s, request)  # never carry a session across identities
                kind = door.session_kinds[0]
                cookie, _ = await sessions.create(s, user.tenant_id, user.email, kind)
                await audit(s, user.tenant_id, user.email, f"{door.name}.signin", user.id, ip=ip)
                await s.commit()
                response = RedirectResponse(door.home, status_code=303)
                sessions.set_cookie(response, cookie)
                response.delete_cookie(
                    door.pending_cookie, path="/", secure=True, httponly=True, samesite="strict"
                )
                return response
        await ratelimit.record(s, [b for b, _ in buckets], ratelimit.HOUR)
        if user is not None:
            await audit(s, user.tenant_id, user.email, f"{door.name}.code.failed", user.id, ip=ip)
        await s.commit()
    return _code_page(st, door, nonce, "", error=_WRONG, status=400)


async def logout(request: Request, door: Door = ADMIN_DOOR) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        admin = await current_user(s, request, door)
        if admin is None:
            return RedirectResponse(door.login_path, status_code=303)
        await checked_form(request, admin)
        await sessions.destroy(s, request)
        await audit(s, admin.tenant.id, admin.actor, f"{door.name}.signout", admin.user.id)
        await s.commit()
    response = RedirectResponse(door.login_path, status_code=303)
    sessions.clear_cookie(response)
    return response
