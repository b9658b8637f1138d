"""``/admin/billing``: the tenant's billing standing and open invoices (issue 6); a partner's
tenant sees only that its provider handles billing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from billing_hooks.models import Invoice
from core.accounts.trials import messages_this_month, nfr_limits, trial_over
from core.models import BillingAccount, Tenant
from portal.admin.context import page_context
from portal.admin.doors import current_admin
from portal.state import portal


async def accounts_of_tenant(s: Any, tenant: Tenant) -> list[BillingAccount]:
    """The billing accounts paying for ``tenant``: its own, or its partner's."""
    conds = [BillingAccount.tenant_id == tenant.id]
    if tenant.partner_id:
        conds.append(BillingAccount.partner_id == tenant.partner_id)
    stmt = select(BillingAccount).where(or_(*conds)).order_by(BillingAccount.id)
    return list((await s.execute(stmt)).scalars().all())


async def standing_page(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        admin = await current_admin(s, request)
        if admin is None:
            return RedirectResponse("/admin/login", status_code=303)
        billing_accounts = await accounts_of_tenant(s, admin.tenant)
        # a partner's invoices are the partner's business, not its customers': a partner's
        # tenant sees only that its provider handles billing
        own = [a for a in billing_accounts if a.kind == "tenant"]
        invoices: list[Invoice] = []
        if own:
            stmt = (
                select(Invoice)
                .where(Invoice.account_id.in_([a.id for a in own]), Invoice.status == "open")
                .order_by(Invoice.due_on, Invoice.id)
            )
            invoices = list((await s.execute(stmt)).scalars().all())
        users_limit, messages_limit = await nfr_limits(s, admin.tenant)
        used = await messages_this_month(s, admin.tenant.id) if messages_limit else 0
        return st.pages.render(
            "admin/billing.html",
            page_context(
                admin,
                tenant_standing=admin.tenant.standing,
                tenant_plan=admin.tenant.plan,
                trial_ends_on=admin.tenant.trial_ends_on,
                trial_over=trial_over(admin.tenant),
                users_limit=users_limit,
                messages_limit=messages_limit,
                messages_used=used,
                billing_accounts=own,
                via_partner=len(own) < len(billing_accounts),
                invoices=invoices,
                pay_url=st.settings.billing_pay_url if own else "",
            ),
        )
