"""Signing in to ``/admin``: email → one-time code through the outbox → a server-side
session of kind ``admin`` bound to one tenant and one user.

The same rules as the recipient side (SPEC §5). Every address gets the same "code sent"
page; only a tenant's admin or compliance user gets a mail. Until the code is entered the
browser holds a *pending* sign-in: a random secret in its own cookie whose SHA-256 keys a
``PortalSession`` row of kind ``admin-code`` with no tenant and no address (so it can never
act as a session anywhere), the user's id and the keyed hash of the code. The code is single
use (the row is deleted by a conditional DELETE), lives 10 minutes and allows 5 tries.
"""

from __future__ import annotations

import dataclasses
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
from core.accounts import audit
from core.ids import new_token
from core.keys import sha256_hex
from core.models import PortalSession, Tenant, User, now
from portal import codes, ratelimit, sessions
from portal.entry import CODE_MAIL_LIFETIME, mask_address
from portal.forms import field, read_form
from portal.security import (
    PRE_COOKIE,
    check_pre_session,
    check_session_token,
    pre_session_token,
    same_origin_request,
)
from portal.state import PortalState, client_ip, portal

log = logging.getLogger("sealmail.portal.admin")

ADMIN_ROLES = ("admin", "compliance")
PENDING_COOKIE = "__Host-sealmail_admin_pending"
PENDING_KIND = "admin-code"
SESSION_KIND = "admin"
SENDS_PER_ADDRESS = 5  # per hour
SENDS_PER_IP = 20
FAILURES_PER_PENDING = codes.MAX_FAILURES
FAILURES_PER_IP = 30


@dataclasses.dataclass(frozen=True)
class Admin:
    session: PortalSession
    user: User
    tenant: Tenant

    @property
    def actor(self) -> str:
        return self.user.email

    def may(self, what: str) -> bool:
        """``quarantine`` for admin and compliance; everything else for admin only."""
        return self.user.role == "admin" or (what == "quarantine" and self.user.role in ADMIN_ROLES)


async def current_admin(s: AsyncSession, request: Request) -> Admin | None:
    """The signed-in admin of this request; the user's role is checked on every request,
    so a removed or demoted user loses access at once."""
    row = await sessions.load(s, request)
    if row is None or row.kind != SESSION_KIND:
        return None
    stmt = select(User, Tenant).join(Tenant, Tenant.id == User.tenant_id)
    stmt = stmt.where(
        User.tenant_id == row.tenant_id,
        func.lower(User.email) == row.email,
        User.role.in_(ADMIN_ROLES),
        Tenant.standing != "terminated",
    )
    found = (await s.execute(stmt)).first()
    if found is None:
        return None
    return Admin(row, found[0], found[1])


async def checked_form(request: Request, admin: Admin) -> FormData:
    """Origin and the session's CSRF token of a signed-in POST."""
    if not same_origin_request(request, portal(request).origins):
        raise HTTPException(403)
    form = await read_form(request)
    if not check_session_token(admin.session.csrf_token, field(form, "csrf")):
        raise HTTPException(403)
    return form


def _nonce(request: Request) -> str | None:
    value = request.cookies.get(PRE_COOKIE)
    return value if value and len(value) <= 64 else None


def _login_page(
    st: PortalState, nonce: str, *, error: str = "", status: int = 200, email: str = ""
) -> Response:
    ctx = {"csrf": pre_session_token(st.csrf_key, nonce, "admin-login"), "error": error}
    ctx["email"] = email
    return st.pages.render("portal/admin_login.html", ctx, status=status)


def _code_page(
    st: PortalState, nonce: str, email: str, *, error: str = "", status: int = 200
) -> Response:
    ctx: dict[str, Any] = {
        "csrf": pre_session_token(st.csrf_key, nonce, "admin-verify"),
        "masked": mask_address(email) if email else "",
        "digits": codes.CODE_DIGITS,
        "minutes": int(codes.CODE_LIFETIME // 60),
        "error": error,
    }
    return st.pages.render("portal/admin_code.html", ctx, status=status)


def _with_nonce(request: Request, response: Response, nonce: str) -> Response:
    if nonce != request.cookies.get(PRE_COOKIE):
        response.set_cookie(
            PRE_COOKIE, nonce, path="/", secure=True, httponly=True, samesite="strict"
        )
    return response


async def login_form(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        if await current_admin(s, request) is not None:
            return RedirectResponse("/admin", status_code=303)
    nonce = _nonce(request) or new_token(24)
    return _with_nonce(request, _login_page(st, nonce), nonce)


async def _pre_checked(request: Request, purpose: str) -> tuple[PortalState, FormData]:
    st = portal(request)
    if not same_origin_request(request, st.origins):
        raise HTTPException(403)
    form = await read_form(request)
    if not check_pre_session(st.csrf_key, _nonce(request), field(form, "csrf"), purpose):
        raise HTTPException(403)
    return st, form


async def _officer(s: AsyncSession, email: str) -> User | None:
    stmt = (
        select(User)
        .join(Tenant, Tenant.id == User.tenant_id)
        .where(
            func.lower(User.email) == email,
            User.role.in_(ADMIN_ROLES),
            Tenant.standing != "terminated",
        )
        .order_by(Tenant.name)
        .limit(1)
    )
    return (await s.execute(stmt)).scalars().first()


async def send_code(request: Request) -> Response:
    st, form = await _pre_checked(request, "admin-login")
    nonce = _nonce(request) or ""
    email = field(form, "email").strip().lower()
    if "@" not in email or any(c.isspace() for c in email):
        return _login_page(st, nonce, error="Enter your email address.", status=400, email=email)
    ip = client_ip(request)
    buckets = [
        (f"admin-code-send:{sha256_hex(email)}", SENDS_PER_ADDRESS),
        (f"admin-code-send-ip:{ip}", SENDS_PER_IP),
    ]
    secret = new_token(32)
    async with st.services.db.session() as s:
        if await ratelimit.exceeded(s, buckets, ratelimit.HOUR):
            return st.pages.error(429, headers={"Retry-After": "3600"})
        await _drop_pending(s, request.cookies.get(PENDING_COOKIE))
        user = await _officer(s, email)
        id_hash = sha256_hex(secret)
        code = codes.new_code()
        created = now()
        s.add(
            PortalSession(
                id_hash=id_hash,
                tenant_id="",  # a pending sign-in is nobody's session
                email=user.id if user else "",
                kind=PENDING_KIND,
                csrf_token=codes.hash_code(st.code_key, id_hash, code),
                created_at=created,
                expires_at=created + codes.CODE_LIFETIME,
            )
        )
        if user is not None:
            await _mail_code(st, s, user, code)
            await audit(s, user.tenant_id, user.email, "admin.code.sent", user.id, ip=ip)
        else:
            log.info("admin sign-in asked for an address that is not an officer")
        await ratelimit.record(s, [b for b, _ in buckets], ratelimit.HOUR)
        await s.commit()
    response = _code_page(st, nonce, email)
    response.set_cookie(
        PENDING_COOKIE, secret, path="/", secure=True, httponly=True, samesite="strict"
    )
    return response


async def _drop_pending(s: AsyncSession, secret: str | None) -> None:
    """Only the newest pending sign-in of a browser counts."""
    if secret and len(secret) <= 200:
        await s.execute(
            delete(PortalSession).where(
                PortalSession.id_hash == sha256_hex(secret), PortalSession.kind == PENDING_KIND
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


async def verify(request: Request) -> Response:
    st, form = await _pre_checked(request, "admin-verify")
    nonce = _nonce(request) or ""
    secret = request.cookies.get(PENDING_COOKIE) or ""
    ip = client_ip(request)
    if not secret or len(secret) > 200:
        return RedirectResponse("/admin/login", status_code=303)
    id_hash = sha256_hex(secret)
    buckets = [
        (f"admin-verify-fail:{id_hash}", FAILURES_PER_PENDING),
        (f"admin-verify-fail-ip:{ip}", FAILURES_PER_IP),
    ]
    async with st.services.db.session() as s:
        if await ratelimit.exceeded(s, buckets, ratelimit.HOUR):
            return st.pages.error(429, headers={"Retry-After": "3600"})
        row = await s.get(PortalSession, id_hash)
        if row is None or row.kind != PENDING_KIND or row.expires_at <= now():
            return RedirectResponse("/admin/login", status_code=303)
        given = codes.hash_code(st.code_key, id_hash, codes.normalize(field(form, "code")))
        user = await s.get(User, row.email) if row.email else None
        if user is not None and hmac.compare_digest(row.csrf_token, given):
            taken = cast(
                CursorResult[Any],
                await s.execute(
                    delete(PortalSession).where(
                        PortalSession.id_hash == id_hash, PortalSession.kind == PENDING_KIND
                    )
                ),
            )
            if taken.rowcount == 1:
                await sessions.destroy(s, request)  # never carry a session across identities
                cookie, _ = await sessions.create(s, user.tenant_id, user.email, SESSION_KIND)
                await audit(s, user.tenant_id, user.email, "admin.signin", user.id, ip=ip)
                await s.commit()
                response = RedirectResponse("/admin", status_code=303)
                sessions.set_cookie(response, cookie)
                response.delete_cookie(
                    PENDING_COOKIE, path="/", secure=True, httponly=True, samesite="strict"
                )
                return response
        await ratelimit.record(s, [b for b, _ in buckets], ratelimit.HOUR)
        if user is not None:
            await audit(s, user.tenant_id, user.email, "admin.code.failed", user.id, ip=ip)
        await s.commit()
    return _code_page(st, nonce, "", error=_WRONG, status=400)


async def logout(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        admin = await current_admin(s, request)
        if admin is None:
            return RedirectResponse("/admin/login", status_code=303)
        await checked_form(request, admin)
        await sessions.destroy(s, request)
        await audit(s, admin.tenant.id, admin.actor, "admin.signout", admin.user.id)
        await s.commit()
    response = RedirectResponse("/admin/login", status_code=303)
    sessions.clear_cookie(response)
    return response
