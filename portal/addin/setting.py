"""The tenant's add-in setting on ``/admin/settings``: what the add-in does when a message
being sent should go securely and is not marked (``tenants.addin_on_send``). Admins change it;
the change is audited with the old and new value."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core.audit import audit
from core.models import Tenant
from portal.admin.context import admin_post
from portal.forms import field

ON_SEND = {
    "off": "Do nothing: the gateway's policy applies when the message arrives.",
    "warn": "Warn the sender, who may send it as it is.",
    "offer": "Mark the message for the sender and tell them, so they send it securely.",
    "block": "Stop the message until the sender marks it Send Secure.",
}


async def save(request: Request) -> Response:
    """``POST /admin/settings/addin``."""
    async with admin_post(request) as (st, s, admin, form):
        value = field(form, "addin_on_send")
        if value not in ON_SEND:
            return st.pages.error(400)
        tenant = await s.get(Tenant, admin.tenant.id)
        assert tenant is not None
        before = tenant.addin_on_send
        if before == value:
            return RedirectResponse("/admin/settings?done=same", status_code=303)
        tenant.addin_on_send = value
        await audit(
            s, tenant.id, admin.actor, "tenant.addin_on_send", tenant.id, before=before, after=value
        )
        await s.commit()
    return RedirectResponse("/admin/settings?done=saved", status_code=303)
