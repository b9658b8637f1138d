"""``/support``: the support desk in the browser (SPEC §8).

Desk agents (``support.models.SupportAgent``, made by ``sealmail support agent add``) sign in
with their address and agent key. They look a caller up by address, check the caller's PIN
(only match / no match / locked), and see the account's standing and what they may do for
the caller (``support.permissions.PERMISSIONS``). An agent of an MSP sees only that
partner's accounts. A caller with no contact record gets the PDF letter.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core import attempts
from core.addresses import valid_or_empty
from core.audit import audit
from core.hashing import sha256_hex
from core.ids import new_token
from core.models import PortalSession
from portal import ratelimit, sessions
from portal.forms import field
from portal.security import DOWNLOAD_CSP, pre_session_token
from portal.signin.steps import nonce_of, pre_checked, with_nonce
from portal.state import PortalState, client_ip, portal
from portal.support.common import (
    AGENT_LOGIN_FAILURES,
    mailer,
    session_form,
    session_of,
)
from support import agents, notify, pins
from support.desk import contacts_for
from support.letter import build_letter, render_letter
from support.models import SupportAgent
from support.permissions import permissions

AGENT_SESSION_KIND = "support"


async def _agent(s: AsyncSession, request: Request) -> tuple[PortalSession, SupportAgent] | None:
    """The signed-in agent; checked on every request, so a removed agent loses access."""
    row = await session_of(s, request, AGENT_SESSION_KIND)
    if row is None:
        return None
    try:
        agent = await agents.find_agent(s, row.email)
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
    nonce = nonce_of(request) or new_token(24)
    return with_nonce(request, _login_page(st, nonce), nonce)


async def desk_login(request: Request) -> Response:
    st, form, nonce = await pre_checked(request, "support-login")
    email = valid_or_empty(field(form, "email"))
    ip = client_ip(request)
    buckets = [
        (f"support-login-fail:{sha256_hex(email)}", AGENT_LOGIN_FAILURES),
        (f"support-login-fail-ip:{ip}", AGENT_LOGIN_FAILURES),
    ]
    # the try is counted before the key is checked, so parallel tries cannot pass the limit
    if not await attempts.claim(st.services.db, buckets, ratelimit.HOUR):
        return st.pages.error(429, headers={"Retry-After": "3600"})
    async with st.services.db.session() as s:
        agent = await agents.agent_by_key(s, email, field(form, "key")) if email else None
        if agent is None:
            return _login_page(st, nonce, error="That address and key do not match.", status=400)
        await attempts.give_back(st.services.db, [b for b, _ in buckets])
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
            await session_form(request, found[0])
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
    form = await session_form(request, row)
    return row, agent, form, valid_or_empty(field(form, "email"))


async def desk_home(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        found = await _agent(s, request)
        if found is None:
            return RedirectResponse("/support/login", status_code=303)
        ctx = _desk_ctx(*found, public=permissions(False, None))
    return st.pages.render("support/desk_home.html", ctx)


async def desk_lookup(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        posted = await _desk_post(s, request)
        if isinstance(posted, Response):
            return posted
        row, agent, form, email = posted
        if not email:
            ctx = _desk_ctx(row, agent, public=permissions(False, None))
            ctx["error"] = "Enter the caller's email address."
            return st.pages.render("support/desk_home.html", ctx, status=400)
        views = await contacts_for(s, email, agents.scope_of(agent))
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
        result = await pins.check_pin(
            s,
            pins.email_key(st.services.root_key),
            email,
            field(form, "pin"),
            agent=agent.email,
            scope=agents.scope_of(agent),
            account_id=field(form, "account") or None,
        )
        await notify.notify_locked(s, mailer(st), result.locked_now)
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
            s,
            st.settings.portal_base_url,
            email,
            field(form, "name"),
            field(form, "named"),
            agents.scope_of(agent),
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
