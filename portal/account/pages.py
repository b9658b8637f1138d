"""``GET /account`` ("Your sign-in") and its plain form posts: remove a passkey, forget one
remembered device or all of them, sign out everywhere. Adding a passkey and confirming with
one are the ceremonies of :mod:`portal.account.ceremonies`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core.audit import audit
from core.models import PortalSession, Tenant
from portal import sessions
from portal.account.common import FACTORS, HOMES, account_session, checked, day
from portal.pages import branding_of
from portal.signin import devices, passkeys
from portal.signin.devices import DEVICE_COOKIE
from portal.state import client_ip, portal

NOTICES = {
    "added": "Your passkey is added. Next time, choose \u201cUse a passkey\u201d to sign in.",
    "removed": "The passkey is removed.",
    "forgotten": "The device is forgotten: it will need a code or a passkey next time.",
    "forgotten-all": "Every remembered device is forgotten.",
    "confirmed": "Thank you: you confirmed with your passkey.",
}


async def account_page(request: Request) -> Response:
    st = portal(request)
    rp = passkeys.relying_party(request)
    async with st.services.db.session() as s:
        current = await account_session(s, request)
        tenant = await s.get(Tenant, current.tenant_id)
        keys = await passkeys.passkeys_of(s, current.tenant_id, current.email)
        remembered = await devices.devices_of(s, current.tenant_id, current.email)
        days = await devices.remember_days(s, current.tenant_id)
    here = [p for p in keys if p.rp_id == rp.rp_id]
    home, home_label = HOMES[current.kind]
    ctx: dict[str, Any] = {
        **branding_of(tenant),
        "signed_in": True,
        "csrf_token": current.csrf_token,
        "email": current.email,
        "home_link": home,
        "home_label": home_label,
        "factor_words": FACTORS.get(current.factor, FACTORS["code"]),
        "passkeys": [
            {
                "id": p.id,
                "name": p.name,
                "added": day(p.created_at),
                "used": day(p.last_used_at) if p.last_used_at else "",
                "elsewhere": p.rp_id if p.rp_id != rp.rp_id else "",
            }
            for p in keys
        ],
        "needs_confirm": bool(here) and current.factor != "passkey",
        "devices": [
            {
                "id": d.id,
                "label": d.label,
                "added": day(d.created_at),
                "until": day(d.expires_at),
                "used": day(d.last_used_at) if d.last_used_at else "",
                "this": devices.is_this_browser(request, d),
            }
            for d in remembered
        ],
        "remember_days": days,
        "notice": NOTICES.get(request.query_params.get("done", ""), ""),
    }
    return st.pages.render("account/account.html", ctx)


def _back(done: str) -> RedirectResponse:
    return RedirectResponse(f"/account?done={done}", status_code=303)


async def remove_passkey(request: Request) -> Response:
    st = portal(request)
    passkey_id = request.path_params["passkey_id"]
    async with st.services.db.session() as s:
        current, _form = await checked(request, s)
        if await passkeys.remove_passkey(s, current.tenant_id, current.email, passkey_id):
            await audit(
                s,
                current.tenant_id,
                current.email,
                "account.passkey.removed",
                passkey_id,
                ip=client_ip(request),
            )
            await s.commit()
    return _back("removed")


async def forget_device(request: Request) -> Response:
    st = portal(request)
    device_id = request.path_params["device_id"]
    async with st.services.db.session() as s:
        current, _form = await checked(request, s)
        if await devices.forget(s, current.tenant_id, current.email, device_id):
            await audit(s, current.tenant_id, current.email, "account.device.forgotten", device_id)
            await s.commit()
    return _back("forgotten")


async def forget_all(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        current, _form = await checked(request, s)
        gone = await devices.forget(s, current.tenant_id, current.email)
        await audit(s, current.tenant_id, current.email, "account.device.forgotten", "", n=gone)
        await s.commit()
    response = _back("forgotten-all")
    response.delete_cookie(DEVICE_COOKIE, path="/", secure=True, httponly=True, samesite="lax")
    return response


async def sign_out_everywhere(request: Request) -> Response:
    """Every session of the identity (of every kind, this one too) and every remembered
    device of it end."""
    st = portal(request)
    async with st.services.db.session() as s:
        current, _form = await checked(request, s)
        await s.execute(
            delete(PortalSession).where(
                PortalSession.tenant_id == current.tenant_id,
                PortalSession.email == current.email,
            )
        )
        gone = await devices.forget(s, current.tenant_id, current.email)
        await audit(
            s, current.tenant_id, current.email, "account.signed_out_everywhere", "", n=gone
        )
        await s.commit()
    response: Response = st.pages.render("reader/signed_out.html")
    sessions.clear_cookie(response)
    response.delete_cookie(DEVICE_COOKIE, path="/", secure=True, httponly=True, samesite="lax")
    return response
