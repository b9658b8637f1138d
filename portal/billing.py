"""Billing in the portal (issue 6): the signed webhook at ``/billing/webhook`` (SPEC §7,
handled by :mod:`billing_hooks`), the tenant's billing standing page ``/admin/billing``,
and the guard that keeps a suspended tenant's admin pages and API read-only.

The webhook's signature is checked on the raw bytes before anything parses them; an unset
``billing_webhook_secret`` refuses every delivery (503) rather than accepting unsigned ones.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import or_, select
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from billing_hooks import events
from billing_hooks.models import Invoice
from billing_hooks.signing import HEADER, SignatureError, verify
from branding.billing_mail import billing_mailer
from core.accounts.authentication import authenticate_api_key
from core.errors import TransientError
from core.models import BillingAccount, Tenant
from portal import sessions
from portal.admin_auth import current_admin
from portal.pages import branding_of
from portal.state import portal

log = logging.getLogger("sealmail.billing")
MAX_BODY = events.MAX_BODY
# requests a suspended tenant may still make although they are POSTs
_OPEN_PATHS = (
    "/admin/login",
    "/admin/verify",
    "/admin/logout",
    "/api/v1/policy/dry-run",  # a question, not a change
    "/api/v1/support/verify",  # the support desk's PIN check
)
_WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def _json_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _read_body(request: Request) -> bytes | None:
    """The raw body, or None when it is larger than :data:`MAX_BODY`."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def webhook(request: Request) -> Response:
    st = portal(request)
    secret = st.settings.billing_webhook_secret.reveal()
    if not secret:
        return _json_error(503, "billing webhooks are not configured (billing_webhook_secret)")
    body = await _read_body(request)
    if body is None:
        return _json_error(413, f"body larger than {MAX_BODY} bytes")
    try:
        verify(request.headers.get(HEADER), body, secret)
    except SignatureError as err:
        log.warning("billing webhook refused: %s", err)
        return _json_error(401, str(err))
    try:
        result = await events.handle(
            st.services.db, st.settings, body, mailer=billing_mailer(st.services)
        )
    except TransientError:
        log.warning("billing webhook: database unavailable, the sender will retry")
        return JSONResponse(
            {"error": "temporarily unavailable, retry later"},
            status_code=503,
            headers={"Retry-After": "30"},
        )
    return JSONResponse(result.body, status_code=result.status)


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
        return st.pages.render(
            "portal/admin_billing.html",
            {
                **branding_of(admin.tenant),
                "admin_email": admin.user.email,
                "admin_role": admin.user.role,
                "csrf_token": admin.session.csrf_token,
                "tenant_standing": admin.tenant.standing,
                "billing_accounts": own,
                "via_partner": len(own) < len(billing_accounts),
                "invoices": invoices,
                "pay_url": st.settings.billing_pay_url if own else "",
            },
        )


ROUTES: list[BaseRoute] = [
    Route("/billing/webhook", webhook, methods=["POST"]),
    Route("/admin/billing", standing_page, methods=["GET"]),
]


class SuspendedTenantGuard:
    """Refuses state-changing admin requests (pages and API) of a suspended tenant with a
    readable 403 page, or a JSON error for the API; reading stays open. It also gives the
    templates the pay link for the read-only banner."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        st = getattr(scope["app"].state, "portal", None)
        if st is not None and "billing_pay_url" not in st.pages.env.globals:
            st.pages.env.globals["billing_pay_url"] = st.settings.billing_pay_url
        path: str = scope["path"]
        guarded = scope["method"] in _WRITE_METHODS and path not in _OPEN_PATHS
        guarded = guarded and (path.startswith("/admin/") or path.startswith("/api/v1/"))
        if not guarded or st is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        tenant = await self._tenant(st, request, api=path.startswith("/api/"))
        if tenant is None or tenant.standing != "suspended":
            await self.app(scope, receive, send)
            return
        if path.startswith("/api/"):
            response: Response = _json_error(
                403, "the account is suspended for billing: read-only until it is paid"
            )
        else:
            response = st.pages.error(
                403,
                title="Read-only while the account is suspended",
                text=(
                    "This account is suspended because of an unpaid invoice, so settings "
                    "cannot be changed. Nothing is lost: mail waits at the sending servers "
                    "and recipients can still open messages already sent. Pay the invoice "
                    "to reinstate the service at once."
                    + (
                        f" Pay at {st.settings.billing_pay_url}"
                        if st.settings.billing_pay_url
                        else ""
                    )
                ),
            )
        await response(scope, receive, send)

    @staticmethod
    async def _tenant(st: Any, request: Request, api: bool) -> Tenant | None:
        async with st.services.db.session() as s:
            if api:
                scheme, _, key = request.headers.get("authorization", "").partition(" ")
                if scheme.lower() != "bearer" or not key.strip():
                    return None
                found = await authenticate_api_key(s, key.strip())
                return found[0] if found else None
            row = await sessions.load(s, request)
            if row is None:
                return None
            return await s.get(Tenant, row.tenant_id)
