"""``/pin``: an account contact's own support PIN (SPEC §8).

The contact enters their address and gets a one-time code by email (through the outbox;
every address gets the same "code sent" page, and sends are rate-limited); the code opens a
short server-side session of kind ``pin`` for that address, which lists the address's
contact records and lets the contact get a new random PIN or choose one. Only an Argon2 hash
is stored, so a new PIN is shown once, on the page that made it; the old one stops working at
once and the contact is emailed that it changed.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core.addresses import valid_or_empty
from core.audit import audit
from core.errors import PermanentError
from core.ids import new_token
from core.models import PortalSession
from portal import sessions
from portal.forms import field
from portal.security import pre_session_token
from portal.signin import by_address, codes
from portal.signin.by_address import AddressDoor, Identity, start
from portal.signin.codes import CODE_MAIL_LIFETIME, mask_address
from portal.signin.steps import (
    TOO_MANY,
    count,
    limited,
    nonce_of,
    pre_checked,
    set_pending_cookie,
    with_nonce,
)
from portal.state import PortalState, client_ip, portal
from portal.support.common import mailer, session_form, session_of
from support import notify, pins
from support.desk import contacts_for

log = logging.getLogger("sealmail.portal.support")

PIN_SESSION_KIND = "pin"
# 5 sends per address and 20 per IP, 5 wrong tries per code and 30 per IP, per hour
PIN_DOOR = AddressDoor("pin", "pin-code", "__Host-sealmail_pin_pending", "/pin")


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
        "minutes": codes.minutes(),
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
    buckets = PIN_DOOR.send_limits(email, ip)
    async with st.services.db.session() as s:
        if await limited(s, buckets):
            return st.pages.error(429, headers=TOO_MANY)
        views = await contacts_for(s, email)
        secret, code = await start(s, request, PIN_DOOR, st.code_key, email if views else "")
        if views:
            first = views[0]
            await notify.send_pin_code(
                s,
                mailer(st),
                views,
                email=email,
                code=code,
                minutes=codes.minutes(),
                lifetime=CODE_MAIL_LIFETIME,
            )
            await audit(s, first.account.tenant_id, email, "pin.code.sent", first.contact.id, ip=ip)
        else:
            log.info("pin code asked for an address that is no account contact")
        await count(s, buckets)
        await s.commit()
    return set_pending_cookie(_pin_code_page(st, nonce, email), PIN_DOOR.pending_cookie, secret)


_WRONG = "That code is not right, or it can no longer be used. Try again or ask for a new one."


async def _identify(_s: AsyncSession, email: str) -> Identity | None:
    return Identity("", email, "") if email else None


def _wrong(st: PortalState, nonce: str) -> Response:
    return _pin_code_page(st, nonce, "", error=_WRONG, status=400)


async def pin_verify(request: Request) -> Response:
    return await by_address.verify(
        request,
        PIN_DOOR,
        identify=_identify,
        session_kind=PIN_SESSION_KIND,
        home="/pin",
        wrong=_wrong,
    )


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
