"""``/admin/users``: the tenant's users (issue 13, item 8) — who they are, their role, who
invited them and when they last signed in; invite by email (the new user gets an invitation
mail through the outbox and signs in with a code, no password), change a role, remove (with a
confirmation page). Admins act; compliance officers read. The last admin can be neither
removed nor demoted (:mod:`core.accounts.users`)."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from branding.mail import compose
from branding.notifications import render_invitation
from core import outbox
from core.accounts.domains import tenant_domains
from core.accounts.users import ROLE_WORDS, ROLES, add_user, change_role, list_users, remove_user
from core.addresses import domain_of, normalize, problem
from core.audit import audit
from core.errors import NotFound, PermanentError
from core.models import Tenant, User
from core.portal_links import portal_url_for
from portal.admin.context import admin_post, officer, page_context
from portal.admin.doors import Admin
from portal.forms import field
from portal.signin import devices, passkeys
from portal.state import PortalState, portal

NOTICES = {
    "invited": "Invitation sent.",
    "role": "Role changed.",
    "removed": "User removed; their sessions have ended.",
    "passkeys": "Their passkeys are removed and their devices forgotten: they can sign in "
    "with an emailed code again.",
}
INVITE_LIFETIME = 3 * 86400.0


async def _page(
    st: PortalState, admin: Admin, *, error: str = "", notice: str = "", status: int = 200
) -> Response:
    async with st.services.db.session() as s:
        users = await list_users(s, admin.tenant.id)
        domains = await tenant_domains(s, admin.tenant.id)
    ctx = page_context(
        admin,
        users=users,
        roles=ROLES,
        role_words=ROLE_WORDS,
        domains=domains,
        may_change=admin.user.role == "admin",
        me=admin.user.id,
        error=error,
        notice=notice,
    )
    return st.pages.render("admin/users.html", ctx, status=status)


async def users_page(request: Request) -> Response:
    st = portal(request)
    admin = await officer(st, request)
    if isinstance(admin, Response):
        return admin
    return await _page(st, admin, notice=NOTICES.get(request.query_params.get("done", ""), ""))


async def invite(request: Request) -> Response:
    async with admin_post(request) as (st, s, admin, form):
        address = normalize(field(form, "email"))
        role = field(form, "role")
        reason = problem(address) if address else "type the new user's email address"
        if reason is None and domain_of(address) not in await tenant_domains(s, admin.tenant.id):
            reason = "users sign in with an address of one of this tenant's domains"
        if reason is not None:
            return await _page(st, admin, error=f"Not invited: {reason}.", status=400)
        tenant = await s.get(Tenant, admin.tenant.id)
        assert tenant is not None
        try:
            await add_user(s, tenant, address, role, actor=admin.actor)
        except PermanentError as exc:
            return await _page(st, admin, error=f"Not invited: {exc}.", status=400)
        door = "/admin/login" if role in ("admin", "compliance") else "/sent/login"
        link = portal_url_for(st.settings.portal_base_url, tenant.portal_host) + door
        mail_from = tenant.notification_from or st.settings.sender_address
        rendered = render_invitation(
            tenant,
            recipient=address,
            role_words=ROLE_WORDS[role],
            invited_by=admin.user.email,
            link=link,
        )
        raw = compose(
            from_addr=mail_from,
            to_addr=address,
            rendered=rendered,
            headers={"Auto-Submitted": "auto-generated"},
        )
        await outbox.post(
            s,
            st.services.vault,
            kind="account",
            tenant_id=tenant.id,
            mail_from=mail_from,
            recipients=[address],
            raw=raw,
            lifetime=INVITE_LIFETIME,
        )
        await s.commit()
    return RedirectResponse("/admin/users?done=invited", status_code=303)


async def set_role(request: Request) -> Response:
    async with admin_post(request) as (st, s, admin, form):
        try:
            await change_role(
                s, admin.tenant.id, request.path_params["user_id"], field(form, "role"), admin.actor
            )
        except NotFound:
            raise HTTPException(404) from None
        except PermanentError as exc:
            return await _page(st, admin, error=f"Role not changed: {exc}.", status=400)
        await s.commit()
    return RedirectResponse("/admin/users?done=role", status_code=303)


async def confirm_remove(request: Request) -> Response:
    st = portal(request)
    admin = await officer(st, request)
    if isinstance(admin, Response):
        return admin
    if admin.user.role != "admin":
        raise HTTPException(404)
    async with st.services.db.session() as s:
        user = await s.get(User, request.path_params["user_id"][:40])
    if user is None or user.tenant_id != admin.tenant.id:
        raise HTTPException(404)
    return st.pages.render("admin/user_remove.html", page_context(admin, user=user))


async def remove(request: Request) -> Response:
    async with admin_post(request) as (st, s, admin, _form):
        try:
            await remove_user(s, admin.tenant.id, request.path_params["user_id"], admin.actor)
        except NotFound:
            raise HTTPException(404) from None
        except PermanentError as exc:
            return await _page(st, admin, error=f"Not removed: {exc}.", status=400)
        await s.commit()
    return RedirectResponse("/admin/users?done=removed", status_code=303)


async def remove_passkeys(request: Request) -> Response:
    """``POST /admin/users/passkeys/remove``: someone lost their passkey: every passkey of the
    address at this tenant goes, and every device remembered for it (audited)."""
    async with admin_post(request) as (st, s, admin, form):
        address = normalize(field(form, "email"))
        if not address or problem(address) is not None:
            return await _page(
                st, admin, error="Type the address whose passkeys to remove.", status=400
            )
        keys = await passkeys.remove_all(s, admin.tenant.id, address)
        forgotten = await devices.forget(s, admin.tenant.id, address)
        await audit(
            s,
            admin.tenant.id,
            admin.actor,
            "admin.passkeys.removed",
            address,
            passkeys=keys,
            devices=forgotten,
        )
        await s.commit()
    return RedirectResponse("/admin/users?done=passkeys", status_code=303)
