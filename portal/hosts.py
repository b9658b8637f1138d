"""Which tenant's own portal host a request came to (``tenant update --portal-host``).

On the operator's host (``portal_base_url``) and on any name that is no tenant's, the portal
works as it always has. On a tenant's host it is that tenant's portal: its brand on the open
pages (``/``, ``/verify``), and nothing of another tenant — a notice link, a session or a
reference code of another tenant is treated as unknown there (404), so a host can never be
used to reach or probe another tenant's messages. The host is the request's ``Host`` header
(a reverse proxy passes it on; ``X-Forwarded-Host`` is never read, see :mod:`portal.client`).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from core.models import Tenant

_UNSET = object()


def request_host(request: Request) -> str:
    return (request.url.hostname or "").lower().rstrip(".")


async def host_tenant(s: AsyncSession, request: Request) -> Tenant | None:
    """The tenant whose portal host this request came to, or None (looked up once)."""
    cached = getattr(request.state, "host_tenant", _UNSET)
    if cached is not _UNSET:
        return cached  # type: ignore[return-value]
    host = request_host(request)
    tenant: Tenant | None = None
    operator = (urlsplit(request.app.state.portal.settings.portal_base_url).hostname or "").lower()
    if host and host != operator and "." in host:
        tenant = (
            await s.execute(select(Tenant).where(Tenant.portal_host == host))
        ).scalar_one_or_none()
    request.state.host_tenant = tenant
    return tenant


async def foreign_here(s: AsyncSession, request: Request, tenant_id: str) -> bool:
    """True when this request came to another tenant's portal host than ``tenant_id``'s."""
    here = await host_tenant(s, request)
    return here is not None and here.id != tenant_id
