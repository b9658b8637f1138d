"""``/admin/setup``: onboarding in minutes (issue 14, item 5). The exact Exchange Online
PowerShell and Google Workspace steps for this tenant, its connector tokens (issue a new
one, shown once; revoke an old one once the rule carries the new), and the live check:
"send a test message now" watches the tenant's next message and shows each step as it
happens, or names what is wrong. Admins act; compliance officers read. The page's content
is :func:`portal.setup.context.setup_context`, shared with the partner console."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from core.accounts.connector_tokens import issue_token, revoke_token
from core.errors import NotFound, PermanentError
from core.setup.checks import open_check, read_check
from portal.admin.context import admin_post, officer, page_context
from portal.admin.doors import Admin
from portal.setup.context import setup_context
from portal.state import PortalState, portal

NO_STORE = {"Cache-Control": "no-store"}
NOTICES = {
    "check": "The check is open for 15 minutes: send a test message now.",
    "revoked": "The connector token was revoked: mail carrying it is refused from now on.",
}


async def _page(
    st: PortalState,
    admin: Admin,
    *,
    notice: str = "",
    error: str = "",
    new_token: str = "",
    status: int = 200,
) -> Response:
    ctx = page_context(
        admin,
        **await setup_context(st.services, admin.tenant, new_token=new_token),
        may_change=admin.user.role == "admin",
        notice=notice,
        error=error,
    )
    return st.pages.render("admin/setup.html", ctx, status=status, headers=NO_STORE)


async def setup_page(request: Request) -> Response:
    st = portal(request)
    admin = await officer(st, request)
    if isinstance(admin, Response):
        return admin
    return await _page(st, admin, notice=NOTICES.get(request.query_params.get("done", ""), ""))


async def start_check(request: Request) -> Response:
    """Open (or restart) the tenant's check."""
    async with admin_post(request) as (_st, s, admin, _form):
        await open_check(s, admin.tenant.id, admin.actor)
        await s.commit()
    return RedirectResponse("/admin/setup?done=check#check", status_code=303)


async def check_state(request: Request) -> Response:
    """The check's steps: ``?format=json`` for programs, ``?format=fragment`` for the
    page's polling script, else a page of its own (the refresh link without JavaScript)."""
    st = portal(request)
    admin = await officer(st, request)
    if isinstance(admin, Response):
        return admin
    async with st.services.db.session() as s:
        check = await read_check(s, admin.tenant.id)
    wanted = request.query_params.get("format", "")
    if wanted == "json" or (not wanted and wants_json(request)):
        return JSONResponse(
            check.as_json() if check else {"state": "none", "steps": []}, headers=NO_STORE
        )
    ctx = page_context(admin, check=check, may_change=admin.user.role == "admin")
    ctx["setup_base"] = "/admin/setup"
    name = "setup/_check.html" if wanted == "fragment" else "admin/setup_check.html"
    return st.pages.render(name, ctx, headers=NO_STORE)


def wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


async def new_token(request: Request) -> Response:
    """Issue a new connector token: shown on this response only, the old ones stay valid."""
    async with admin_post(request) as (st, s, admin, _form):
        token = await issue_token(s, admin.tenant.id, admin.actor)
        await s.commit()
    return await _page(st, admin, new_token=token)


async def revoke(request: Request) -> Response:
    async with admin_post(request) as (st, s, admin, _form):
        try:
            await revoke_token(s, admin.tenant.id, request.path_params["token_id"], admin.actor)
        except NotFound:
            raise HTTPException(404) from None
        except PermanentError as exc:
            return await _page(st, admin, error=f"Not revoked: {exc}.", status=400)
        await s.commit()
    return RedirectResponse("/admin/setup?done=revoked", status_code=303)
