"""Support PINs in the portal (issue 6, SPEC §8): ``/pin`` for account contacts and
``/support`` for the support desk.

``/pin``: a contact enters their address and gets a one-time code by email (through the
outbox; every address gets the same "code sent" page, and sends are rate-limited); the code
opens a short server-side session of kind ``pin`` for that address, which lists the address's
contact records and lets the contact get a new random PIN or choose one. Only an Argon2 hash is
stored, so a new PIN is shown once, on the page that made it; the old one stops working at once
and the contact is emailed that it changed.

``/support``: desk agents (:class:`core.models.SupportAgent`, made by ``sealmail support agent
add``) sign in with their address and agent key. They look a caller up by address, check the
caller's PIN (only match / no match / locked), and see the account's standing and what they may
do for the caller (:data:`billing_hooks.support.PERMISSIONS`). An agent of an MSP sees only
that partner's accounts. A caller with no contact record gets the PDF letter.
"""

from __future__ import annotations

import datetime
import hmac
import logging
from typing import Any, cast

from sqlalchemy import delete
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from archive.services import Services
from billing_hooks import support as desk
from branding.mail import Rendered, compose
from branding.support_letter import LetterInfo, render_letter
from branding.support_mail import render_pin_changed, render_pin_code, render_pin_locked
from core import outbox
from core.audit import audit
from core.config.settings import Settings
from core.errors import PermanentError
from core.hashing import sha256_hex
from core.ids import new_token
from core.models import PortalSession, SupportAgent, Tenant, now
from portal import codes, ratelimit, sessions
from portal.entry import CODE_MAIL_LIFETIME, mask_address
from portal.forms import field, read_form
from portal.security import (
    DOWNLOAD_CSP,
    PRE_COOKIE,
    check_pre_session,
    check_session_token,
    pre_session_token,
    same_origin_request,
)
from portal.state import PortalState, client_ip, portal

log = logging.getLogger("sealmail.portal.support")

PIN_PENDING_KIND = "pin-code"
PIN_PENDING_COOKIE = "__Host-sealmail_pin_pending"
PIN_SESSION_KIND = "pin"
AGENT_SESSION_KIND = "support"
SENDS_PER_ADDRESS = 5  # per hour
SENDS_PER_IP = 20
FAILURES_PER_IP = 30
AGENT_LOGIN_FAILURES = 10  # per hour, per address and per IP
NOTICE_LIFETIME = 2 * 86400.0


def email_key(services: Services) -> bytes:
    return services.root_key.derive("support-email")


# --- mail to contacts (used by the portal and by ``sealmail support verify``) ---------------


async def send_contact_mail(
    services: Services,
    settings: Settings,
    s: AsyncSession,
    view: desk.ContactView,
    rendered: Rendered,
    kind: str = "notification",
) -> bool:
    """Seal and queue a mail to one contact (the caller commits). False when the account has
    no tenant whose keys could seal it (a partner account with no tenant yet)."""
    tenant_id = await desk.mail_tenant_id(s, view.account)
    if tenant_id is None:
        log.warning("support: no tenant to seal mail for account %s", view.account.id)
        return False
    tenant = await s.get(Tenant, tenant_id)
    mail_from = (tenant.notification_from if tenant else "") or settings.sender_address
    raw = compose(
        from_addr=mail_from,
        to_addr=view.contact.email,
        rendered=rendered,
        headers={"Auto-Submitted": "auto-generated"},
    )
    sealed = await services.vault.seal(s, tenant_id, raw, kind="outbound")
    lifetime = CODE_MAIL_LIFETIME if kind == "code" else NOTICE_LIFETIME
    await outbox.enqueue(
        s,
        kind=kind,
        tenant_id=tenant_id,
        mail_from=mail_from,
        recipients=[view.contact.email],
        object_id=sealed.id,
        lifetime=lifetime,
    )
    return True


async def _mail_tenant(s: AsyncSession, view: desk.ContactView) -> Tenant | None:
    """Whose branding the mail wears: a tenant account's own; a partner account's mail is
    sealed under one of its tenants' keys but wears no tenant's branding."""
    return view.tenant if view.account.tenant_id else None


async def notify_locked(
    services: Services, settings: Settings, s: AsyncSession, views: list[desk.ContactView]
) -> None:
    """Tell each contact whose PIN a check just locked (the lock is taken once, so this
    runs once per lock)."""
    for v in views:
        rendered = render_pin_locked(
            await _mail_tenant(s, v),
            recipient=v.contact.email,
            account_name=v.account_name,
            failures=desk.MAX_FAILURES,
            at=now(),
            portal_url=settings.portal_base_url,
        )
        await send_contact_mail(services, settings, s, v, rendered)


# --- shared bits -----------------------------------------------------------------------------


def _nonce(request: Request) -> str | None:
    value = request.cookies.get(PRE_COOKIE)
    return value if value and len(value) <= 64 else None


def _with_nonce(request: Request, response: Response, nonce: str) -> Response:
    if nonce != request.cookies.get(PRE_COOKIE):
        response.set_cookie(
            PRE_COOKIE, nonce, path="/", secure=True, httponly=True, samesite="strict"
        )
    return response


async def _pre_checked(request: Request, purpose: str) -> tuple[PortalState, FormData, str]:
    st = portal(request)
    if not same_origin_request(request, st.origins):
        raise HTTPException(403)
    form = await read_form(request)
    nonce = _nonce(request)
    if not check_pre_session(st.csrf_key, nonce, field(form, "csrf"), purpose):
        raise HTTPException(403)
    return st, form, nonce or ""


async def _session_form(request: Request, row: PortalSession) -> FormData:
    if not same_origin_request(request, portal(request).origins):
        raise HTTPException(403)
    form = await read_form(request)
    if not check_session_token(row.csrf_token, field(form, "csrf")):
        raise HTTPException(403)
    return form


async def _session_of(s: AsyncSession, request: Request, kind: str) -> PortalSession | None:
    row = await sessions.load(s, request)
    return row if row is not None and row.kind == kind else None


def _email(text: str) -> str:
    address = text.strip().lower()
    if address.count("@") != 1 or len(address) > 320:
        return ""
    # no spaces, no control characters (PostgreSQL cannot even store a NUL)
    if any(c.isspace() or not c.isprintable() for c in address):
        return ""
    local, _, domain = address.partition("@")
    return address if local and "." in domain else ""


# --- /pin: the contact -----------------------------------------------------------------------


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
    views = await desk.contacts_for(s, row.email)
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
        row = await _session_of(s, request, PIN_SESSION_KIND)
        if row is not None:
            return await _pin_manage(st, s, row)
    nonce = _nonce(request) or new_token(24)
    return _with_nonce(request, _pin_start(st, nonce), nonce)


async def pin_send_code(request: Request) -> Response:
    st, form, nonce = await _pre_checked(request, "pin-login")
    email = _email(field(form, "email"))
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
        views = await desk.contacts_for(s, email)
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
            rendered = render_pin_code(
                await _mail_tenant(s, first),
                code=code,
                recipient=email,
                account_name=", ".join(v.account_name for v in views),
                minutes=int(codes.CODE_LIFETIME // 60),
                portal_url=st.settings.portal_base_url,
            )
            await send_contact_mail(st.services, st.settings, s, first, rendered, kind="code")
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
    st, form, nonce = await _pre_checked(request, "pin-verify")
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
        row = await _session_of(s, request, PIN_SESSION_KIND)
        if row is None:
            return RedirectResponse("/pin", status_code=303)
        form = await _session_form(request, row)
        contact_id = field(form, "contact")
        views = [v for v in await desk.contacts_for(s, row.email) if v.contact.id == contact_id]
        if not views:  # not one of this address's contact records
            raise HTTPException(404)
        view = views[0]
        chosen: str | None = None
        if field(form, "mode") == "choose":
            chosen, again = field(form, "pin"), field(form, "pin2")
            if desk.normalize_pin(chosen) != desk.normalize_pin(again):
                return await _pin_manage(st, s, row, error="The two PINs differ.", status=400)
        try:
            pin = await desk.set_pin(s, view.contact, chosen)
        except PermanentError as exc:
            return await _pin_manage(st, s, row, error=f"Not changed: {exc}.", status=400)
        rendered = render_pin_changed(
            await _mail_tenant(s, view),
            recipient=view.contact.email,
            account_name=view.account_name,
            chosen=chosen is not None,
            at=now(),
            portal_url=st.settings.portal_base_url,
        )
        await send_contact_mail(st.services, st.settings, s, view, rendered)
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
        row = await _session_of(s, request, PIN_SESSION_KIND)
        if row is not None:
            await _session_form(request, row)
            await sessions.destroy(s, request)
            await s.commit()
    response = RedirectResponse("/pin", status_code=303)
    sessions.clear_cookie(response)
    return response


# --- /support: the desk ----------------------------------------------------------------------


async def _agent(s: AsyncSession, request: Request) -> tuple[PortalSession, SupportAgent] | None:
    """The signed-in agent; checked on every request, so a removed agent loses access."""
    row = await _session_of(s, request, AGENT_SESSION_KIND)
    if row is None:
        return None
    try:
        agent = await desk.find_agent(s, row.email)
    except Exception:  # noqa: BLE001 - removed, or the session's address is not one
        return None
    return row, agent


def _login_page(st: PortalState, nonce: str, *, error: str = "", status: int = 200) -> Response:
    ctx = {"csrf": pre_session_token(st.csrf_key, nonce, "support-login"), "error": error}
    return st.pages.render("support/desk_login.html", ctx, status=status)


async def desk_login_form(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        if await _agent(s, request) is not None:
            return RedirectResponse("/support", status_code=303)
    nonce = _nonce(request) or new_token(24)
    return _with_nonce(request, _login_page(st, nonce), nonce)


async def desk_login(request: Request) -> Response:
    st, form, nonce = await _pre_checked(request, "support-login")
    email = _email(field(form, "email"))
    ip = client_ip(request)
    buckets = [
        (f"support-login-fail:{sha256_hex(email)}", AGENT_LOGIN_FAILURES),
        (f"support-login-fail-ip:{ip}", AGENT_LOGIN_FAILURES),
    ]
    async with st.services.db.session() as s:
        if await ratelimit.exceeded(s, buckets, ratelimit.HOUR):
            return st.pages.error(429, headers={"Retry-After": "3600"})
        agent = await desk.agent_by_key(s, email, field(form, "key")) if email else None
        if agent is None:
            await ratelimit.record(s, [b for b, _ in buckets], ratelimit.HOUR)
            await s.commit()
            return _login_page(st, nonce, error="That address and key do not match.", status=400)
        await sessions.destroy(s, request)
        cookie, _ = await sessions.create(s, "", agent.email, AGENT_SESSION_KIND)
        await audit(s, None, agent.email, "support.signin", agent.id, ip=ip)
        await s.commit()
    response = RedirectResponse("/support", status_code=303)
    sessions.set_cookie(response, cookie)
    return response


async def desk_logout(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        found = await _agent(s, request)
        if found is not None:
            await _session_form(request, found[0])
            await sessions.destroy(s, request)
            await s.commit()
    response = RedirectResponse("/support/login", status_code=303)
    sessions.clear_cookie(response)
    return response


def _desk_ctx(row: PortalSession, agent: SupportAgent, **more: Any) -> dict[str, Any]:
    return {"csrf": row.csrf_token, "agent": agent.email, "error": "", **more}


async def _desk_post(
    s: AsyncSession, request: Request
) -> tuple[PortalSession, SupportAgent, FormData, str] | Response:
    """A desk form post: the signed-in agent (else a redirect to sign-in), its form (same
    origin and CSRF checked) and the caller's address ("" when missing or malformed)."""
    found = await _agent(s, request)
    if found is None:
        return RedirectResponse("/support/login", status_code=303)
    row, agent = found
    form = await _session_form(request, row)
    return row, agent, form, _email(field(form, "email"))


async def desk_home(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        found = await _agent(s, request)
        if found is None:
            return RedirectResponse("/support/login", status_code=303)
        ctx = _desk_ctx(*found, public=desk.permissions(False, None))
    return st.pages.render("support/desk_home.html", ctx)


async def desk_lookup(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        posted = await _desk_post(s, request)
        if isinstance(posted, Response):
            return posted
        row, agent, form, email = posted
        if not email:
            ctx = _desk_ctx(row, agent, public=desk.permissions(False, None))
            ctx["error"] = "Enter the caller's email address."
            return st.pages.render("support/desk_home.html", ctx, status=400)
        views = await desk.contacts_for(s, email, desk.scope_of(agent))
        await audit(s, None, agent.email, "support.lookup", "", found=len(views))
        await s.commit()
        ctx = _desk_ctx(row, agent, email=email, contacts=[v.summary() for v in views])
    return st.pages.render("support/desk_lookup.html", ctx)


async def desk_verify(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        posted = await _desk_post(s, request)
        if isinstance(posted, Response):
            return posted
        row, agent, form, email = posted
        if not email:
            raise HTTPException(400)
        result = await desk.check_pin(
            s,
            email_key(st.services),
            email,
            field(form, "pin"),
            agent=agent.email,
            scope=desk.scope_of(agent),
            account_id=field(form, "account") or None,
        )
        await notify_locked(st.services, st.settings, s, result.locked_now)
        await s.commit()
        ctx = _desk_ctx(row, agent, email=email, check=result.as_dict())
    return st.pages.render("support/desk_result.html", ctx)


async def desk_letter(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        posted = await _desk_post(s, request)
        if isinstance(posted, Response):
            return posted
        row, agent, form, email = posted
        if not email:
            raise HTTPException(400)
        info = await build_letter(
            s, st.settings, email, field(form, "name"), field(form, "named"), desk.scope_of(agent)
        )
        await audit(s, None, agent.email, "support.letter", info.reference, named=bool(info.named))
        await s.commit()
    pdf = render_letter(info)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="support-letter-{info.reference}.pdf"',
            "Content-Security-Policy": DOWNLOAD_CSP,
        },
    )


async def build_letter(
    s: AsyncSession,
    settings: Settings,
    caller_email: str,
    caller_name: str,
    named_text: str,
    scope: desk.Scope = desk.OPERATOR,
) -> LetterInfo:
    """What the letter says: the account the caller named, when the desk may see it."""
    named = await desk.find_named(s, named_text, scope)
    return LetterInfo(
        reference=desk.letter_reference(),
        date=datetime.datetime.now(datetime.UTC).date(),
        caller_email=caller_email,
        caller_name=caller_name,
        account_name=named.name if named else "",
        partner_name=named.partner.name if named and named.partner else "",
        named="" if named else named_text.strip(),
        portal_url=settings.portal_base_url,
    )


# --- the API: POST /api/v1/support/verify -----------------------------------------------------


def _api_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def api_verify(request: Request) -> Response:
    """``{"email", "pin"[, "account"]}`` with a desk agent's key as bearer token: the same
    check as ``/support`` (recorded, audited, counted towards the lock), as JSON."""
    st = portal(request)
    ip = client_ip(request)
    bucket = f"support-api-fail-ip:{ip}"
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip() or len(key) > 200:
        return _api_error(401, "missing bearer agent key", {"WWW-Authenticate": "Bearer"})
    async with st.services.db.session() as s:
        if await ratelimit.exceeded(s, [(bucket, AGENT_LOGIN_FAILURES)], ratelimit.HOUR):
            return _api_error(429, "too many failed attempts", {"Retry-After": "3600"})
        agent = await desk.agent_by_bearer(s, key)
        if agent is None:
            await ratelimit.record(s, [bucket], ratelimit.HOUR)
            await s.commit()
            return _api_error(401, "invalid agent key", {"WWW-Authenticate": "Bearer"})
        try:
            body = await request.json()
        except (ValueError, RecursionError):  # RecursionError: nested too deep
            return _api_error(400, "the body must be a JSON object")
        if not isinstance(body, dict):
            return _api_error(400, "the body must be a JSON object")
        email, pin, account = body.get("email"), body.get("pin"), body.get("account")
        if not isinstance(email, str) or not _email(email):
            return _api_error(400, "email: an email address is required")
        if not isinstance(pin, str) or not pin.strip() or len(pin) > 40:
            return _api_error(400, "pin: a string is required")
        if account is not None and not isinstance(account, str):
            return _api_error(400, "account: a string (billing account id) or absent")
        result = await desk.check_pin(
            s, email_key(st.services), _email(email), pin,
            agent=agent.email, scope=desk.scope_of(agent), account_id=account or None,
        )  # fmt: skip
        await notify_locked(st.services, st.settings, s, result.locked_now)
        await s.commit()
    return JSONResponse(result.as_dict())


SUPPORT_PATHS: dict[str, Any] = {
    "/api/v1/support/verify": {
        "post": {
            "summary": "The support desk's PIN check (bearer: a desk agent's key, not a tenant "
            "API key): body {email, pin, account?}; answers result (match, no_match, locked, "
            "no_pin, no_contact), the account and its standing, and each action allowed or "
            "refused. Counts towards the lock and is audited like /support.",
            "responses": {
                "200": {"description": "the check's result"},
                "400": {"description": "a missing or malformed field"},
                "401": {"description": "missing or invalid agent key"},
                "429": {"description": "too many invalid keys from this address"},
            },
        }
    }
}

ROUTES: list[BaseRoute] = [
    Route("/api/v1/support/verify", api_verify, methods=["POST"]),
    Route("/pin", pin_page, methods=["GET"]),
    Route("/pin/code", pin_send_code, methods=["POST"]),
    Route("/pin/verify", pin_verify, methods=["POST"]),
    Route("/pin/reset", pin_reset, methods=["POST"]),
    Route("/pin/logout", pin_logout, methods=["POST"]),
    Route("/support", desk_home, methods=["GET"]),
    Route("/support/login", desk_login_form, methods=["GET"]),
    Route("/support/login", desk_login, methods=["POST"]),
    Route("/support/logout", desk_logout, methods=["POST"]),
    Route("/support/lookup", desk_lookup, methods=["POST"]),
    Route("/support/verify", desk_verify, methods=["POST"]),
    Route("/support/letter", desk_letter, methods=["POST"]),
]
