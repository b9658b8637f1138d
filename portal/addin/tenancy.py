"""Which tenant an add-in request is for: the tenant whose own portal host the request came
to (:func:`portal.hosts.host_tenant`), or on the service's own host the ``?tenant=<id>``
query. A tenant's host never serves another tenant's manifest."""

from __future__ import annotations

from starlette.requests import Request

from core.models import Tenant
from portal.hosts import host_tenant
from portal.state import portal

_MAX_ID = 64


async def manifest_tenant(request: Request) -> Tenant | None:
    """The tenant, or None when there is none here (unknown, terminated, or another's)."""
    wanted = request.query_params.get("tenant", "").strip()
    if len(wanted) > _MAX_ID:
        return None
    async with portal(request).services.db.session() as s:
        here = await host_tenant(s, request)
        if here is not None:
            return here if wanted in ("", here.id) and here.standing != "terminated" else None
        if not wanted:
            return None
        tenant = await s.get(Tenant, wanted)
    if tenant is None or tenant.standing == "terminated":
        return None
    return tenant
