"""``/m/{token}``: from the notification's link to a verified session, and
signing out again (``/logout``).

The token alone never opens a message. A random token, or one of a terminated tenant, gets
the same 404 page as any unknown address; the link of a revoked or expired access gets the
410 page of :mod:`portal.reader.gone`, which names the sender and offers to ask for a new
copy. The first verified opening of an access is recorded (:mod:`portal.reader.receipts`).
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

from branding.brands import BrandLook, brand_of_message
from branding.notifications import format_time
from core.audit import audit
from core.hashing import sha256_hex
from core.ids import new_token
from core.models import Message, PortalAccess, Tenant, now
from portal import sessions
from portal.forms import field, read_form
from portal.hosts import foreign_here
from portal.pages import branding_of
from portal.reader import gone, receipts
from portal.security import (
    check_session_token,
    pre_session_token,
    same_origin_request,
)
from portal.signin import codes, devices, passkeys
from portal.signin.codes import mask_address
from portal.signin.steps import (
    TOO_MANY,
    Limits,
    count,
    limited,
    mail_code,
    nonce_of,
    open_session,
    pre_checked,
    with_nonce,
)
from portal.signin.stores import AccessCodes
from portal.state import PortalState, client_ip, portal

log = logging.getLogger("sealmail.portal")
# per hour: 5 sends per link and 20 per IP, 10 failures per link (across codes) and 30 per IP
LIMITS = Limits("", failures_per_subject=10)
_MAX_TOKEN = 200


async def find_access(
    session: AsyncSession, token: str, request: Request
) -> tuple[PortalAccess, Tenant] | None:
    """The live access of a notice's link and its tenant; None for anything else, including
    a link of another tenant opened on a tenant's own portal host."""
    if not token or len(token) > _MAX_TOKEN:
        return None
    stmt = select(PortalAccess).where(PortalAccess.token_hash == sha256_hex(token))
    access = (await session.execute(stmt)).scalars().first()
    if access is None or access.revoked or access.expires_at <= now():
        return None
    msg = await session.get(Message, access.message_id)
    if msg is None or msg.portal_expired_at is not None:  # see portal.reader.gone
        return None
    tenant = await session.get(Tenant, access.tenant_id)
    if tenant is None or tenant.standing == "terminated":
        return None
    if await foreign_here(session, request, tenant.id):
        return None
    return access, tenant


def _page_context(
    st: PortalState,
    token: str,
    access: PortalAccess,
    tenant: Tenant,
    nonce: str,
    look: BrandLook | None = None,
) -> dict[str, Any]:
    return {
        **branding_of(tenant, look),
        "token": token,
        "masked_recipient": mask_address(access.recipient),
        "expires": format_time(access.expires_at),
        "csrf": pre_session_token(st.csrf_key, nonce, access.token_hash),
        "digits": codes.CODE_DIGITS,
        "minutes": codes.minutes(),
        "error": "",
        "notice": "",
        "passkey": False,
        "remembered": False,
        "remember_days": 0,
        "code_refused": False,
    }


async def fast_context(s: AsyncSession, request: Request, access: PortalAccess) -> dict[str, Any]:
    """What the entry and code pages offer besides the code: "Use a passkey" (the identity
    has one on this host), "Continue: this device is remembered", the "Remember this
    device" box, and whether the code is refused (a passkey and no code fallback)."""
    rp_id = passkeys.relying_party(request).rp_id
    email = access.recipient.strip().lower()
    has = await passkeys.has_passkey(s, access.tenant_id, email, rp_id)
    device = await devices.remembered_for(s, request, access.tenant_id, email)
    return {
        "passkey": has,
        "remembered": device is not None,
        "remember_days": await devices.remember_days(s, access.tenant_id),
        "code_refused": has and await passkeys.code_refused(s, access.tenant_id, email, rp_id),
    }


async def signed_in(
    st: PortalState,
    s: AsyncSession,
    request: Request,
    access: PortalAccess,
    *,
    factor: str,
    **details: Any,
) -> Response:
    """The recipient proved the address (by ``factor``): open the session on the message,
    audit ``portal.verified`` with the method, commit, and record the first opening."""
    response = await open_session(
        s,
        request,
        tenant_id=access.tenant_id,
        email=access.recipient,
        kind="recipient",
        home=f"/messages/{access.message_id}",
        factor=factor,
    )
    ip = client_ip(request)
    await audit(
        s,
        access.tenant_id,
        access.recipient,
        "portal.verified",
        access.id,
        ip=ip,
        method=factor,
        **details,
    )
    await s.commit()
    if access.first_opened_at is None:
        await receipts.mark_opened(st, access.id)
    return response


async def show(request: Request) -> Response:
    st = portal(request)
    token = request.path_params["token"]
    async with st.services.db.session() as s:
        found = await find_access(s, token, request)
        if found is None:
            ended = await gone.show_by_token(request, s, token)
            if ended is not None:  # revoked or expired: say so and by whom, not "invalid link"
                return ended
            return st.pages.error(404)
        access, tenant = found
        current = await sessions.load(s, request)
        if (
            current is not None
            and current.tenant_id == access.tenant_id
            and current.email == access.recipient.strip().lower()
        ):
            return RedirectResponse(f"/messages/{access.message_id}", status_code=303)
        look = await brand_of_message(s, tenant, access.message_id, access.recipient)
        fast = await fast_context(s, request, access)
    nonce = nonce_of(request) or new_token(24)
    ctx = {**_page_context(st, token, access, tenant, nonce, look), **fast}
    response = st.pages.render("reader/entry.html", ctx)
    return with_nonce(request, response, nonce)


async def _checked_post(request: Request) -> tuple[PortalState, str, FormData]:
    """Origin and the signed double-submit token, before anything touches the database."""
    token = request.path_params["token"]
    if len(token) > _MAX_TOKEN:
        raise HTTPException(403)
    st, form, _nonce = await pre_checked(request, sha256_hex(token))
    return st, token, form


async def send_code(request: Request) -> Response:
    st, token, _form_data = await _checked_post(request)
    ip = client_ip(request)
    async with st.services.db.session() as s:
        found = await find_access(s, token, request)
        if found is None:
            return st.pages.error(404)
        access, tenant = found
        fast = await fast_context(s, request, access)
        if fast["code_refused"]:
            return _refused(st, token, access, tenant, request, fast)
        buckets = LIMITS.sends(access.id, ip)
        if await limited(s, buckets):
            await audit(s, tenant.id, access.recipient, "portal.code.limited", access.id)
            await s.commit()
            return st.pages.error(429, headers=TOO_MANY)
        code = await AccessCodes(access.id).issue(s, st.code_key)
        item = await mail_code(st, s, tenant, access.recipient, code)
        await count(s, buckets)
        await audit(s, tenant.id, access.recipient, "portal.code.sent", access.id, outbox=item.id)
        await s.commit()
    log.info("portal: code sent for access %s (outbox %s)", access.id, item.id)
    nonce = nonce_of(request) or ""
    ctx = {**_page_context(st, token, access, tenant, nonce), **fast}
    ctx["notice"] = "We have sent you a new code."
    return st.pages.render("reader/code.html", ctx)


def _refused(
    st: PortalState,
    token: str,
    access: PortalAccess,
    tenant: Tenant,
    request: Request,
    fast: dict[str, Any],
) -> Response:
    """The code path when the tenant asks for the passkey: the entry page, saying why."""
    ctx = {**_page_context(st, token, access, tenant, nonce_of(request) or ""), **fast}
    ctx["error"] = passkeys.CODE_REFUSED
    return st.pages.render("reader/entry.html", ctx, status=403)


_FAILURE_TEXT = {
    "wrong": "That code is not right. You can try {left} more time{s} with this code.",
    "dead": "This code can no longer be used. Send yourself a new code.",
    "none": "Send yourself a code first.",
}


async def verify(request: Request) -> Response:
    st, token, form = await _checked_post(request)
    ip = client_ip(request)
    async with st.services.db.session() as s:
        found = await find_access(s, token, request)
        if found is None:
            return st.pages.error(404)
        access, tenant = found
        buckets = LIMITS.failures(access.id, ip)
        if await limited(s, buckets):
            return st.pages.error(429, headers=TOO_MANY)
        fast = await fast_context(s, request, access)
        if fast["code_refused"]:
            return _refused(st, token, access, tenant, request, fast)
        store = AccessCodes(access.id)
        held = await store.newest(s)
        outcome = await codes.check(s, st.code_key, store, held, field(form, "code"))
        if outcome.ok:
            response = await open_session(
                s,
                request,
                tenant_id=tenant.id,
                email=access.recipient,
                kind="recipient",
                home=f"/messages/{access.message_id}",
            )
            if field(form, "remember") == "yes":
                await devices.remember(s, request, response, tenant.id, access.recipient)
            await audit(
                s, tenant.id, access.recipient, "portal.verified", access.id, ip=ip, method="code"
            )
            await s.commit()
            if access.first_opened_at is None:
                await receipts.mark_opened(st, access.id)
            return response
        await count(s, buckets)
        await audit(
            s,
            tenant.id,
            access.recipient,
            "portal.code.failed",
            access.id,
            reason=outcome.reason,
            checked=outcome.checked,
        )
        await s.commit()
    ctx = {**_page_context(st, token, access, tenant, nonce_of(request) or ""), **fast}
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
