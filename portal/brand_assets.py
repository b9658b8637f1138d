"""A tenant's brand on the portal's pages: its stylesheet (``/brand/{tenant}.css``, the
colours of the tenant's settings or of one of its brands, ``?b=<brand id>``: the CSP
forbids inline styles) and its logo (``/brand/{tenant}/logo/{brand}.png``: the PNG branding
re-encoded from the upload, never the upload itself)."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from branding.brands import look_of
from branding.models import Brand
from branding.templating import safe_color
from core.models import Tenant
from portal.state import portal


async def brand_css(request: Request) -> Response:
    st = portal(request)
    tenant_id = request.path_params["tenant_id"][:40]
    brand_id = request.query_params.get("b", "")[:40]
    async with st.services.db.session() as s:
        tenant = await s.get(Tenant, tenant_id)
        row = await s.get(Brand, brand_id) if brand_id and tenant else None
    if tenant is not None and row is not None and row.tenant_id == tenant.id:
        look = look_of(tenant, row)
        color, text = look.color, look.text_color
    else:
        color, text = safe_color(tenant.brand_color if tenant else ""), "#ffffff"
    return Response(
        f":root {{ --brand: {safe_color(color)}; --brand-text: {safe_color(text)}; }}\n",
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=300"},
    )


async def brand_logo(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        row = await s.get(Brand, request.path_params["brand_id"][:40])
    if row is None or row.tenant_id != request.path_params["tenant_id"] or not row.logo_png:
        raise HTTPException(404)
    return Response(
        row.logo_png,
        media_type="image/png",
        headers={
            "Cache-Control": "public, max-age=86400",
            "ETag": f'"{row.logo_sha256[:32]}"',
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cross-Origin-Resource-Policy": "cross-origin",
        },
    )
