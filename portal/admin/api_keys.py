"""``/admin/api-keys``: the tenant's API keys (issue 13, item 8) — each with its name, scope,
who made it and when it was last used; a new key is shown once, on the page that creates
it, and only its hash is kept; revoking (after a confirmation) refuses it at once. Admins
act; compliance officers read."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core.accounts.api_keys import SCOPE_WORDS, SCOPES, create_key, key_id, list_keys, revoke_key
from core.errors import NotFound, PermanentError
from portal.admin.context import admin_post, officer, page_context
from portal.admin.doors import Admin
from portal.forms import field
from portal.state import PortalState, portal


async def _page(
    st: PortalState,
    admin: Admin,
    *,
    error: str = "",
    notice: str = "",
    new_key: str = "",
    status: int = 200,
) -> Response:
    async with st.services.db.session() as s:
        keys = await list_keys(s, admin.tenant.id)
    ctx = page_context(
        admin,
        keys=[(key_id(k), k) for k in keys],
        scopes=SCOPES,
        scope_words=SCOPE_WORDS,
        may_change=admin.user.role == "admin",
        error=error,
        notice=notice,
        new_key=new_key,
        api_base=st.settings.portal_base_url.rstrip("/") + "/api/v1",
    )
    headers = {"Cache-Control": "no-store"}
    return st.pages.render("admin/api_keys.html", ctx, status=status, headers=headers)


async def keys_page(request: Request) -> Response:
    st = portal(request)
    admin = await officer(st, request)
    if isinstance(admin, Response):
        return admin
    done = request.query_params.get("done", "")
    return await _page(st, admin, notice="Key revoked." if done == "revoked" else "")


async def create(request: Request) -> Response:
    async with admin_post(request) as (st, s, admin, form):
        try:
            key, _row = await create_key(
                s, admin.tenant.id, field(form, "label"), field(form, "scope"), admin.actor
            )
        except PermanentError as exc:
            return await _page(st, admin, error=f"No key made: {exc}.", status=400)
        await s.commit()
    # shown on this response only: never in a URL, never stored, never shown again
    return await _page(st, admin, new_key=key)


async def confirm_revoke(request: Request) -> Response:
    st = portal(request)
    admin = await officer(st, request)
    if isinstance(admin, Response):
        return admin
    if admin.user.role != "admin":
        raise HTTPException(404)
    async with st.services.db.session() as s:
        found = [
            k
            for k in await list_keys(s, admin.tenant.id)
            if key_id(k) == request.path_params["api_key_id"]
        ]
    if not found:
        raise HTTPException(404)
    ctx = page_context(admin, kid=key_id(found[0]), key=found[0])
    return st.pages.render("admin/api_key_revoke.html", ctx)


async def revoke(request: Request) -> Response:
    async with admin_post(request) as (_st, s, admin, _form):
        try:
            await revoke_key(s, admin.tenant.id, request.path_params["api_key_id"], admin.actor)
        except NotFound:
            raise HTTPException(404) from None
        await s.commit()
    return RedirectResponse("/admin/api-keys?done=revoked", status_code=303)
