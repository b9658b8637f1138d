"""``/admin/settings``: the tenant's own settings in the browser (issue 13, item 8) — where
its journal reports go, its next hop, the networks its mail servers send from, its own portal
host, and how secure conversations behave by default. Validated and audited by the same
service as ``sealmail tenant update`` (:mod:`core.accounts.tenant_settings`), so the page and
the CLI can never disagree. Admins change; compliance officers read."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core.accounts.networks import add_network, remove_network, tenant_networks
from core.accounts.tenant_settings import (
    FORWARD_DEFAULTS,
    REPLY_DEFAULTS,
    SENT_USERS,
    update_tenant,
)
from core.errors import NotFound, PermanentError
from core.evidence.keys import published
from core.models import Tenant
from portal.admin import protection
from portal.admin.context import admin_post, officer, page_context
from portal.admin.doors import Admin
from portal.admin.pdf_setting import pdf_when_no_key
from portal.forms import field
from portal.state import PortalState, portal

NOTICES = {
    "saved": "Settings saved.",
    "added": "Network added.",
    "removed": "Network removed.",
    "same": "Nothing changed.",
}
REPLY_WORDS = {
    "none": "no one may reply in the portal",
    "sender": "recipients may reply to the sender",
    "all": "recipients may reply to everyone on the message",
}
FORWARD_WORDS = {
    "no": "no forwarding",
    "internal": "forwarding to this tenant's domains only",
    "yes": "forwarding to anyone",
}
SENT_WORDS = {
    "domain": "any address of the tenant's domains may sign in to /sent",
    "listed": "only listed users may sign in to /sent",
}


async def _page(
    st: PortalState, admin: Admin, *, error: str = "", notice: str = "", status: int = 200
) -> Response:
    async with st.services.db.session() as s:
        tenant = await s.get(Tenant, admin.tenant.id)
        networks = await tenant_networks(s, admin.tenant.id)
        signing = await published(s, admin.tenant.id)
        guarded = await protection.context(s, admin.tenant.id)
        pdf = await pdf_when_no_key(s, admin.tenant.id)
    ctx = page_context(
        admin,
        t=tenant,
        networks=networks,
        signing_keys=signing,
        pdf_when_no_key=pdf,
        keys_url=f"{st.settings.portal_base_url.rstrip('/')}/.well-known/sealmail/receipt-keys"
        f"?tenant={admin.tenant.id}",
        reply_words=[(k, REPLY_WORDS[k]) for k in REPLY_DEFAULTS],
        forward_words=[(k, FORWARD_WORDS[k]) for k in FORWARD_DEFAULTS],
        sent_words=[(k, SENT_WORDS[k]) for k in SENT_USERS],
        may_change=admin.user.role == "admin",
        error=error,
        notice=notice,
        **guarded,
    )
    return st.pages.render("admin/settings.html", ctx, status=status)


async def settings_page(request: Request) -> Response:
    st = portal(request)
    admin = await officer(st, request)
    if isinstance(admin, Response):
        return admin
    problem = protection.PROBLEMS.get(request.query_params.get("problem", ""), "")
    done = NOTICES.get(request.query_params.get("done", ""), "")
    return await _page(st, admin, notice=done, error=problem)


async def save(request: Request) -> Response:
    async with admin_post(request) as (st, s, admin, form):
        tenant = await s.get(Tenant, admin.tenant.id)
        assert tenant is not None
        try:
            changed = await update_tenant(
                s,
                tenant,
                admin.actor,
                journal_address=field(form, "journal_address"),
                relay=field(form, "relay"),
                portal_host=field(form, "portal_host"),
                receipt_default=field(form, "receipt_default") == "yes",
                reply_default=field(form, "reply_default"),
                forward_default=field(form, "forward_default"),
                sent_users=field(form, "sent_users"),
                hide_subject=field(form, "hide_subject") == "yes",
            )
        except PermanentError as exc:  # checked before anything is set: nothing changed
            return await _page(st, admin, error=f"Not saved: {exc}.", status=400)
        await s.commit()
    return RedirectResponse(
        f"/admin/settings?done={'saved' if changed else 'same'}", status_code=303
    )


async def add(request: Request) -> Response:
    async with admin_post(request) as (st, s, admin, form):
        tenant = await s.get(Tenant, admin.tenant.id)
        assert tenant is not None
        try:
            await add_network(
                s, tenant, field(form, "cidr"), field(form, "private") == "yes", admin.actor
            )
        except PermanentError as exc:
            return await _page(st, admin, error=f"Not added: {exc}.", status=400)
        await s.commit()
    return RedirectResponse("/admin/settings?done=added", status_code=303)


async def remove(request: Request) -> Response:
    async with admin_post(request) as (_st, s, admin, _form):
        try:
            await remove_network(
                s, admin.tenant.id, int(request.path_params["network_id"]), admin.actor
            )
        except NotFound:
            raise HTTPException(404) from None
        await s.commit()
    return RedirectResponse("/admin/settings?done=removed", status_code=303)
