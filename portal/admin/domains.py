"""``/admin/domains``: the tenant's domains and what to publish in DNS so its notices pass
DKIM and DMARC (the DKIM key record, SPF, a DMARC suggestion), checked live each time the
page opens; the DKIM keys (make the first, rotate, switch to the new one once DNS shows it,
or anyway); and the address notices come from. Admins only; everything audited by
:mod:`core.dkim.keys` and :mod:`core.accounts.tenant_settings`; a suspended tenant's posts
are refused by the billing guard like every admin change."""

from __future__ import annotations

import time
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core.accounts.domains import tenant_domains
from core.accounts.tenant_settings import update_tenant
from core.dkim import keys, publish, records
from core.errors import NotFound, PermanentError
from core.models import Tenant
from portal.admin.context import page_context
from portal.admin.doors import Admin, checked_form, current_admin
from portal.forms import field
from portal.state import PortalState, portal

NOTICES = {
    "generate": "A new key was made. Publish its DKIM record below, then switch to it.",
    "rotate": "A new key was made beside the current one, which keeps signing until you switch.",
    "activate": "Notices are now signed with the new key. The old key's record can go in a week.",
    "sender": "The sender of your notices was saved.",
    "nothing": "There was nothing to do: each domain already has a key waiting or in use.",
}
ACTIONS = ("generate", "rotate", "activate")


def _domain_view(domain: str, rows: list[Any], checks: list[Any]) -> dict[str, Any]:
    mine = [k for k in rows if k.domain == domain]
    by_state = {state: [k for k in mine if k.state == state] for state in keys.STATES}
    return {
        "name": domain,
        "active": by_state[keys.ACTIVE][0] if by_state[keys.ACTIVE] else None,
        "pending": by_state[keys.PENDING][0] if by_state[keys.PENDING] else None,
        "retired": by_state[keys.RETIRED],
        "checks": [c for c in checks if c.record.domain == domain],
    }


async def _page(
    st: PortalState, admin: Admin, *, error: str = "", notice: str = "", status: int = 200
) -> Response:
    settings = st.services.settings
    async with st.services.db.session() as s:
        tenant = await s.get(Tenant, admin.tenant.id)
        assert tenant is not None
        domains = await tenant_domains(s, tenant.id)
        rows = list(await keys.keys_of(s, tenant.id))
        wanted = await publish.records_of(s, settings, tenant)
    # DNS is asked with no database connection held (a slow resolver takes seconds)
    checks = await records.check(wanted, publish.resolver(settings).txt)
    sender = tenant.notification_from or settings.sender_address
    ctx = page_context(
        admin,
        domains=[_domain_view(d, rows, checks) for d in domains],
        sender=sender,
        own_sender=bool(tenant.notification_from),
        sender_domain=sender.rpartition("@")[2].lower(),
        notification_from=tenant.notification_from,
        keep_retired=keys.KEEP_RETIRED_RECORD,
        checked_at=time.time(),
        error=error,
        notice=notice,
    )
    return st.pages.render("admin/domains.html", ctx, status=status)


async def _admin(st: PortalState, request: Request) -> Admin | Response:
    async with st.services.db.session() as s:
        admin = await current_admin(s, request)
    if admin is None:
        return RedirectResponse("/admin/login", status_code=303)
    if not admin.may("domains"):
        raise HTTPException(404)
    return admin


async def domains_page(request: Request) -> Response:
    st = portal(request)
    admin = await _admin(st, request)
    if isinstance(admin, Response):
        return admin
    notice = NOTICES.get(request.query_params.get("done", ""), "")
    return await _page(st, admin, notice=notice)


async def change_keys(request: Request) -> Response:
    """Make a first key, rotate, or switch to the pending key (``action``), for one domain
    or all (``domain`` empty)."""
    st = portal(request)
    async with st.services.db.session() as s:
        admin = await current_admin(s, request)
        if admin is None:
            raise HTTPException(401)
        form = await checked_form(request, admin)
        if not admin.may("domains"):
            raise HTTPException(404)
        action = field(form, "action")
        if action not in ACTIONS:
            raise HTTPException(400)
        domain = field(form, "domain") or None
        tenant = await s.get(Tenant, admin.tenant.id)
        assert tenant is not None
        try:
            if action == "activate":
                changed = await publish.activate(
                    s,
                    st.services.keyring,
                    st.services.settings,
                    tenant,
                    admin.actor,
                    domain,
                    force=field(form, "force") == "yes",
                )
            else:
                changed = await keys.generate(
                    s,
                    st.services.keyring,
                    tenant.id,
                    admin.actor,
                    domain,
                    rotate=action == "rotate",
                )
        except NotFound:
            raise HTTPException(404) from None
        except PermanentError as exc:  # nothing is committed
            return await _page(st, admin, error=str(exc), status=400)
        await s.commit()
    done = action if changed else "nothing"
    return RedirectResponse(f"/admin/domains?done={done}", status_code=303)


async def save_sender(request: Request) -> Response:
    """The address notices come from: one of the tenant's domains, or '' for the service's."""
    st = portal(request)
    async with st.services.db.session() as s:
        admin = await current_admin(s, request)
        if admin is None:
            raise HTTPException(401)
        form = await checked_form(request, admin)
        if not admin.may("domains"):
            raise HTTPException(404)
        tenant = await s.get(Tenant, admin.tenant.id)
        assert tenant is not None
        try:
            await update_tenant(
                s, tenant, admin.actor, notification_from=field(form, "notification_from")
            )
        except PermanentError as exc:  # nothing is committed
            return await _page(st, admin, error=str(exc), status=400)
        await s.commit()
    return RedirectResponse("/admin/domains?done=sender", status_code=303)
