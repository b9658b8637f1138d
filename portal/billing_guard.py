"""The guard that keeps a suspended tenant's admin pages and API read-only (issue 6), and
gives the templates the pay link for the read-only banner."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from core.accounts.authentication import authenticate_api_key
from core.models import Tenant
from portal import sessions

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
