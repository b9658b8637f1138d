"""``/pin``: an account contact's own support PIN (SPEC §8).

The contact enters their address and gets a one-time code by email (through the outbox;
every address gets the same "code sent" page, and sends are rate-limited); the code opens a
short server-side session of kind ``pin`` for that address, which lists the address's
contact records and lets the contact get a new random PIN or choose one. Only an Argon2 hash
is stored, so a new PIN is shown once, on the page that made it; the old one stops working at
once and the contact is emailed that it changed.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any, cast

from sqlalchemy import delete
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core.addresses import valid_or_empty
from core.audit import audit
from core.errors import PermanentError
from core.hashing import sha256_hex
from core.ids import new_token
from core.models import PortalSession, now
from portal import codes, ratelimit, sessions
from portal.codes import CODE_MAIL_LIFETIME, mask_address
from portal.forms import field
from portal.security import pre_session_token
from portal.state import PortalState, client_ip, portal
from portal.support.common import (
    mailer,
    nonce_of,
    pre_checked,
    session_form,
    session_of,
    with_nonce,
)
from support import notify, pins
from support.desk import contacts_for

log = logging.getLogger("sealmail.portal.support")

PIN_PENDING_KIND = "pin-code"
PIN_PENDING_COOKIE = "__Host-sealmail_pin_pending"
PIN_SESSION_KIND = "pin"
SENDS_PER_ADDRESS = 5  # per hour
SENDS_PER_IP = 20
FAILURES_PER_IP = 30


def _pin_start(
    st: PortalState, nonce: str, *, error: str = "", email: str = "", status: int = 200
) -> Response:
    ctx = {"csrf": pre_session_token(st.csrf_key, nonce, "pin-login"), "error": error}
    ctx["email"] = email
    return st.pages.render("support/pin_start.html", ctx, status=status)


def _pin_code_page(
    st: PortalState, nonce: str, email: str, *, error: str = "", status: int = 200
) -> Response:
    ctx: dict[str, Any] = {
        "csrf": pre_session_token(st.csrf_key, nonce, "pin-verify"),
        "masked": mask_address(email) if email else "",
        "digits": codes.CODE_DIGITS,
        "minutes": int(codes.CODE_LIFETIME // 60),
        "error": error,
    }
    return st.pages.render("support/pin_enter_code.html", ctx, status=status)


async def _pin_manage(
    st: PortalState, s: AsyncSession, row: PortalSession, *, error: str = "", status: int = 200
) -> Response:
    views = await contacts_for(s, row.email)
    ctx = {
        "email": row.email,
        "contacts": [v.summary() for v in views],
        "csrf": row.csrf_token,
        "error": error,
    }
    return st.pages.render("support/pin_manage.html", ctx, status=status)


async def pin_page(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        row = await session_of(s, request, PIN_SESSION_KIND)
        if row is not None:
            return await _pin_manage(st, s, row)
    nonce = nonce_of(request) or new_token(24)
    return with_nonce(request, _pin_start(st, nonce), nonce)


async def pin_send_code(request: Request) -> Response:
    st, form, nonce = await pre_checked(request, "pin-login")
    email = valid_or_empty(field(form, "email"))
    if not email:
        return _pin_start(st, nonce, error="Enter your email address.", status=400)
    ip = client_ip(request)
    buckets = [
        (f"pin-code-send:{sha256_hex(email)}", SENDS_PER_ADDRESS),
        (f"pin-code-send-ip:{ip}", SENDS_PER_IP),
    ]
    secret = new_token(32)
    async with st.services.db.session() as s:
        if await ratelimit.exceeded(s, buckets, ratelimit.HOUR):
            return st.pages.error(429, headers={"Retry-After": "3600"})
        old = request.cookies.get(PIN_PENDING_COOKIE)
        if old and len(old) <= 200:
            await s.execute(
                delete(PortalSession).where(
                    PortalSession.id_hash == sha256_hex(old),
                    PortalSession.kind == PIN_PENDING_KIND,
                )
            )
        views = await contacts_for(s, email)
        id_hash = sha256_hex(secret)
        code = codes.new_code()
        created = now()
        s.add(
            PortalSession(
                id_hash=id_hash,
                tenant_id="",  # a pending sign-in is nobody's session
                email=email if views else "",
                kind=PIN_PENDING_KIND,
                csrf_token=codes.hash_code(st.code_key, id_hash, code),
                created_at=created,
                expires_at=created + codes.CODE_LIFETIME,
            )
        )
        if views:
            first = views[0]
            await notify.send_pin_code(
                s,
                mailer(st),
                views,
                email=email,
                code=code,
                minutes=int(codes.CODE_LIFETIME // 60),
                lifetime=CODE_MAIL_LIFETIME,
            )
            await audit(s, first.account.tenant_id, email, "pin.code.sent", first.contact.id, ip=ip)
        else:
            log.info("pin code asked for an address that is no account contact")
        await ratelimit.record(s, [b for b, _ in buckets], ratelimit.HOUR)
        await s.commit()
    response = _pin_code_page(st, nonce, email)
    response.set_cookie(
        PIN_PENDING_COOKIE, secret, path="/", secure=True, httponly=True, samesite="strict"
    )
    return response


_WRONG = "That code is not right, or it can no longer be used. Try again or ask for a new one."


async def pin_verify(request: Request) -> Response:
    st, form, nonce = await pre_checked(request, "pin-verify")
    secret = request.cookies.get(PIN_PENDING_COOKIE) or ""
    if not secret or len(secret) > 200:
        return RedirectResponse("/pin", status_code=303)
    ip = client_ip(request)
    id_hash = sha256_hex(secret)
    buckets = [
        (f"pin-verify-fail:{id_hash}", codes.MAX_FAILURES),
        (f"pin-verify-fail-ip:{ip}", FAILURES_PER_IP),
    ]
    async with st.services.db.session() as s:
        if await ratelimit.exceeded(s, buckets, ratelimit.HOUR):
            return st.pages.error(429, headers={"Retry-After": "3600"})
        row = await s.get(PortalSession, id_hash)
        if row is None or row.kind != PIN_PENDING_KIND or row.expires_at <= now():
            return RedirectResponse("/pin", status_code=303)
        given = codes.hash_code(st.code_key, id_hash, codes.normalize(field(form, "code")))
        if row.email and hmac.compare_digest(row.csrf_token, given):
            email = row.email
            taken = cast(
                CursorResult[Any],
                await s.execute(
                    delete(PortalSession).where(
                        PortalSession.id_hash == id_hash, PortalSession.kind == PIN_PENDING_KIND
                    )
                ),
            )
            if taken.rowcount == 1:
                await sessions.destroy(s, request)  # never carry a session across identities
                cookie, _ = await sessions.create(s, "", email, PIN_SESSION_KIND)
                await audit(s, None, email, "pin.signin", "", ip=ip)
                await s.commit()
                response = RedirectResponse("/pin", status_code=303)
                sessions.set_cookie(response, cookie)
                response.delete_cookie(
                    PIN_PENDING_COOKIE, path="/", secure=True, httponly=True, samesite="strict"
                )
                return response
        await ratelimit.record(s, [b for b, _ in buckets], ratelimit.HOUR)
        await s.commit()
    return _pin_code_page(st, nonce, "", error=_WRONG, status=400)


async def pin_reset(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        row = await session_of(s, request, PIN_SESSION_KIND)
        if row is None:
            return RedirectResponse("/pin", status_code=303)
        form = await session_form(request, row)
        contact_id = field(form, "contact")
        views = [v for v in await contacts_for(s, row.email) if v.contact.id == contact_id]
        if not views:  # not one of this address's contact records
            raise HTTPException(404)
        view = views[0]
        chosen: str | None = None
        if field(form, "mode") == "choose":
            chosen, again = field(form, "pin"), field(form, "pin2")
            if pins.normalize_pin(chosen) != pins.normalize_pin(again):
                return await _pin_manage(st, s, row, error="The two PINs differ.", status=400)
        try:
            pin = await pins.set_pin(s, view.contact, chosen)
        except PermanentError as exc:
            return await _pin_manage(st, s, row, error=f"Not changed: {exc}.", status=400)
        await notify.notify_changed(s, mailer(st), view, chosen=chosen is not None)
        await s.commit()
        ctx = {
            "pin": pin,
            "chosen": chosen is not None,
            "account": view.account_name,
            "email": row.email,
        }
    return st.pages.render("support/pin_shown.html", ctx)


async def pin_logout(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        row = await session_of(s, request, PIN_SESSION_KIND)
        if row is not None:
            await session_form(request, row)
            await sessions.destroy(s, request)
            await s.commit()
    response = RedirectResponse("/pin", status_code=303)
    sessions.clear_cookie(response)
    return response
