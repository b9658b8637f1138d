"""``/m/{token}``: from the notification's link to a verified session, and
signing out again (``/logout``).

The token alone never opens a message. A random, expired or revoked token, or one of a
terminated tenant, gets the same 404 page as any unknown address.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from branding.mail import compose
from branding.notifications import format_time, render_code_email
from core import outbox
from core.audit import audit
from core.hashing import sha256_hex
from core.ids import new_token
from core.models import Message, PortalAccess, Tenant, now
from portal import codes, ratelimit, sessions
from portal.codes import CODE_MAIL_LIFETIME, mask_address
from portal.forms import field, read_form
from portal.pages import branding_of
from portal.security import (
    PRE_COOKIE,
    check_pre_session,
    check_session_token,
    pre_session_token,
    same_origin_request,
)
from portal.state import PortalState, client_ip, portal

log = logging.getLogger("sealmail.portal")
CODE_SENDS_PER_ACCESS = 5  # per hour
CODE_SENDS_PER_IP = 20
FAILURES_PER_ACCESS = 10  # per hour, across codes
FAILURES_PER_IP = 30
_MAX_TOKEN = 200


async def find_access(session: AsyncSession, token: str) -> tuple[PortalAccess, Tenant] | None:
    if not token or len(token) > _MAX_TOKEN:
        return None
    stmt = select(PortalAccess).where(PortalAccess.token_hash == sha256_hex(token))
    access = (await session.execute(stmt)).scalars().first()
    if access is None or access.revoked or access.expires_at <= now():
        return None
    msg = await session.get(Message, access.message_id)
    if msg is None or msg.portal_expired_at is not None:  # see expired_message
        return None
    tenant = await session.get(Tenant, access.tenant_id)
    if tenant is None or tenant.standing == "terminated":
        return None
    return access, tenant


async def expired_message(session: AsyncSession, token: str) -> Tenant | None:
    """The tenant of the message behind ``token`` if the sweep expired its portal copy
    (portal retention over), else None."""
    if not token or len(token) > _MAX_TOKEN:
        return None
    stmt = (
        select(PortalAccess)
        .join(Message, Message.id == PortalAccess.message_id)
        .where(
            PortalAccess.token_hash == sha256_hex(token),
            PortalAccess.revoked.is_(False),
            Message.portal_expired_at.is_not(None),
        )
    )
    access = (await session.execute(stmt)).scalars().first()
    if access is None:
        return None
    tenant = await session.get(Tenant, access.tenant_id)
    return None if tenant is None or tenant.standing == "terminated" else tenant


def _nonce(request: Request) -> str | None:
    value = request.cookies.get(PRE_COOKIE)
    return value if value and len(value) <= 64 else None


def _page_context(
    st: PortalState, token: str, access: PortalAccess, tenant: Tenant, nonce: str
) -> dict[str, Any]:
    return {
        **branding_of(tenant),
        "token": token,
        "masked_recipient": mask_address(access.recipient),
        "expires": format_time(access.expires_at),
        "csrf": pre_session_token(st.csrf_key, nonce, access.token_hash),
        "digits": codes.CODE_DIGITS,
        "minutes": int(codes.CODE_LIFETIME // 60),
        "error": "",
        "notice": "",
    }


async def show(request: Request) -> Response:
    st = portal(request)
    token = request.path_params["token"]
    async with st.services.db.session() as s:
        found = await find_access(s, token)
        if found is None:
            expired = await expired_message(s, token)
            if expired is not None:  # retention over: say so, not "invalid link"
                return st.pages.error(410, **branding_of(expired))
            return st.pages.error(404)
        access, tenant = found
        current = await sessions.load(s, request)
        if (
            current is not None
            and current.tenant_id == access.tenant_id
            and current.email == access.recipient.strip().lower()
        ):
            return RedirectResponse(f"/messages/{access.message_id}", status_code=303)
    nonce = _nonce(request) or new_token(24)
    response = st.pages.render("reader/entry.html", _page_context(st, token, access, tenant, nonce))
    if nonce != request.cookies.get(PRE_COOKIE):
        response.set_cookie(
            PRE_COOKIE, nonce, path="/", secure=True, httponly=True, samesite="strict"
        )
    return response


async def _checked_post(request: Request) -> tuple[PortalState, str, FormData]:
    """Origin and the signed double-submit token, before anything touches the database."""
    st = portal(request)
    token = request.path_params["token"]
    if not same_origin_request(request, st.origins):
        raise HTTPException(403)
    form = await read_form(request)
    if len(token) > _MAX_TOKEN or not check_pre_session(
        st.csrf_key, _nonce(request), field(form, "csrf"), sha256_hex(token)
    ):
        raise HTTPException(403)
    return st, token, form


async def send_code(request: Request) -> Response:
    st, token, _form_data = await _checked_post(request)
    ip = client_ip(request)
    async with st.services.db.session() as s:
        found = await find_access(s, token)
        if found is None:
            return st.pages.error(404)
        access, tenant = found
        buckets = [
            (f"code-send:{access.id}", CODE_SENDS_PER_ACCESS),
            (f"code-send-ip:{ip}", CODE_SENDS_PER_IP),
        ]
        if await ratelimit.exceeded(s, buckets, ratelimit.HOUR):
            await audit(s, tenant.id, access.recipient, "portal.code.limited", access.id)
            await s.commit()
            return st.pages.error(429, headers={"Retry-After": "3600"})
        code = await codes.issue(s, st.code_key, access)
        mail_from = tenant.notification_from or st.settings.sender_address
        raw = compose(
            from_addr=mail_from,
            to_addr=access.recipient,
            rendered=render_code_email(
                tenant,
                code=code,
                recipient=access.recipient,
                minutes=int(codes.CODE_LIFETIME // 60),
            ),
            headers={"Auto-Submitted": "auto-generated"},
        )
        sealed = await st.services.vault.seal(s, tenant.id, raw, kind="outbound")
        item = await outbox.enqueue(
            s,
            kind="code",
            tenant_id=tenant.id,
            mail_from=mail_from,
            recipients=[access.recipient],
            object_id=sealed.id,
            lifetime=CODE_MAIL_LIFETIME,
        )
        await ratelimit.record(s, [b for b, _ in buckets], ratelimit.HOUR)
        await audit(s, tenant.id, access.recipient, "portal.code.sent", access.id, outbox=item.id)
        await s.commit()
    log.info("portal: code sent for access %s (outbox %s)", access.id, item.id)
    nonce = _nonce(request) or ""
    ctx = _page_context(st, token, access, tenant, nonce)
    ctx["notice"] = "We have sent you a new code."
    return st.pages.render("reader/code.html", ctx)


_FAILURE_TEXT = {
    "wrong": "That code is not right. You can try {left} more time{s} with this code.",
    "dead": "This code can no longer be used. Send yourself a new code.",
    "none": "Send yourself a code first.",
}


async def verify(request: Request) -> Response:
    st, token, form = await _checked_post(request)
    ip = client_ip(request)
    async with st.services.db.session() as s:
        found = await find_access(s, token)
        if found is None:
            return st.pages.error(404)
        access, tenant = found
        buckets = [
            (f"verify-fail:{access.id}", FAILURES_PER_ACCESS),
            (f"verify-fail-ip:{ip}", FAILURES_PER_IP),
        ]
        if await ratelimit.exceeded(s, buckets, ratelimit.HOUR):
            return st.pages.error(429, headers={"Retry-After": "3600"})
        outcome = await codes.verify(s, st.code_key, access, field(form, "code"))
        if outcome.ok:
            await sessions.destroy(s, request)  # never carry a session across identities
            secret, _row = await sessions.create(s, tenant.id, access.recipient)
            if access.first_opened_at is None:
                access.first_opened_at = now()
            await audit(s, tenant.id, access.recipient, "portal.verified", access.id, ip=ip)
            await s.commit()
            response = RedirectResponse(f"/messages/{access.message_id}", status_code=303)
            sessions.set_cookie(response, secret)
            return response
        await ratelimit.record(s, [b for b, _ in buckets], ratelimit.HOUR)
        await audit(
            s, tenant.id, access.recipient, "portal.code.failed", access.id, reason=outcome.reason
        )
        await s.commit()
    ctx = _page_context(st, token, access, tenant, _nonce(request) or "")
    left = outcome.tries_left
    ctx["error"] = _FAILURE_TEXT[outcome.reason].format(left=left, s="" if left == 1 else "s")
    return st.pages.render("reader/code.html", ctx, status=400)


async def logout(request: Request) -> Response:
    st = portal(request)
    if not same_origin_request(request, st.origins):
        raise HTTPException(403)
    form = await read_form(request)
    async with st.services.db.session() as s:
        current = await sessions.load(s, request)
        if current is not None:
            if not check_session_token(current.csrf_token, field(form, "csrf")):
                raise HTTPException(403)
            await sessions.destroy(s, request)
            await audit(s, current.tenant_id, current.email, "portal.signed_out")
            await s.commit()
    response: Response = st.pages.render("reader/signed_out.html")
    sessions.clear_cookie(response)
    return response
