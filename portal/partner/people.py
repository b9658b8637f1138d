"""``/partner/people`` and ``/partner/api-keys``: who works in the partner console (partner
admins and technicians: added, removed; the last partner admin stays) and the partner's API
keys (scope ``partner``: its tenants through ``/api/v1/tenants``; shown once, stored hashed,
last use shown, revoked at once). Partner admins change; technicians look."""

from __future__ import annotations

from sqlalchemy import delete
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core.accounts.models import PARTNER_ROLES
from core.accounts.partner_users import (
    ROLE_WORDS,
    add_partner_user,
    create_partner_key,
    list_partner_keys,
    list_partner_users,
    partner_key_id,
    remove_partner_user,
    revoke_partner_key,
)
from core.errors import NotFound, PermanentError
from core.models import PortalSession
from portal.forms import field
from portal.partner.doors import PartnerPerson, page_context, partner_post, signed_in
from portal.state import PortalState, portal

NOTICES = {
    "added": "Added: they sign in at /partner with a code sent to their address.",
    "removed": "Removed: their sessions have ended.",
    "revoked": "Key revoked: programs using it are refused from now on.",
}


async def _people(
    st: PortalState, who: PartnerPerson, *, error: str = "", notice: str = "", status: int = 200
) -> Response:
    async with st.services.db.session() as s:
        people = await list_partner_users(s, who.partner.id)
    ctx = page_context(
        who, people=people, roles=PARTNER_ROLES, role_words=ROLE_WORDS, me=who.user.id,
        error=error, notice=notice,
    )  # fmt: skip
    return st.pages.render("partner/people.html", ctx, status=status)


async def people_page(request: Request) -> Response:
    st = portal(request)
    who = await signed_in(st, request)
    if isinstance(who, Response):
        return who
    return await _people(st, who, notice=NOTICES.get(request.query_params.get("done", ""), ""))


async def add_person(request: Request) -> Response:
    async with partner_post(request) as (st, s, who, form):
        try:
            await add_partner_user(
                s, who.partner, field(form, "email"), field(form, "role"), who.actor
            )
        except PermanentError as exc:
            await s.rollback()
            return await _people(st, who, error=f"Not added: {exc}.", status=400)
        await s.commit()
    return RedirectResponse("/partner/people?done=added", status_code=303)


async def remove_person(request: Request) -> Response:
    async with partner_post(request) as (st, s, who, _form):
        try:
            removed = await remove_partner_user(
                s, who.partner.id, request.path_params["user_id"], who.actor
            )
        except NotFound:
            raise HTTPException(404) from None
        except PermanentError as exc:
            await s.rollback()
            return await _people(st, who, error=f"Not removed: {exc}.", status=400)
        await s.execute(
            delete(PortalSession).where(
                PortalSession.email == removed.email,
                PortalSession.tenant_id == who.partner.id,
            )
        )
        await s.commit()
    return RedirectResponse("/partner/people?done=removed", status_code=303)


async def _keys(
    st: PortalState,
    who: PartnerPerson,
    *,
    new_key: str = "",
    error: str = "",
    notice: str = "",
    status: int = 200,
) -> Response:
    async with st.services.db.session() as s:
        keys = await list_partner_keys(s, who.partner.id)
    ctx = page_context(
        who, keys=keys, key_id=partner_key_id, new_key=new_key, error=error, notice=notice
    )
    return st.pages.render("partner/api_keys.html", ctx, status=status)


async def keys_page(request: Request) -> Response:
    st = portal(request)
    who = await signed_in(st, request)
    if isinstance(who, Response):
        return who
    return await _keys(st, who, notice=NOTICES.get(request.query_params.get("done", ""), ""))


async def create_key(request: Request) -> Response:
    async with partner_post(request) as (st, s, who, form):
        try:
            key, _row = await create_partner_key(s, who.partner.id, field(form, "label"), who.actor)
        except PermanentError as exc:
            await s.rollback()
            return await _keys(st, who, error=f"Not made: {exc}.", status=400)
        await s.commit()
    return await _keys(st, who, new_key=key, status=201)


async def revoke_key(request: Request) -> Response:
    async with partner_post(request) as (_st, s, who, _form):
        try:
            await revoke_partner_key(
                s, who.partner.id, request.path_params["api_key_id"], who.actor
            )
        except NotFound:
            raise HTTPException(404) from None
        await s.commit()
    return RedirectResponse("/partner/api-keys?done=revoked", status_code=303)
