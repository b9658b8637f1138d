"""``GET /``: what this site is and how to tell a genuine notice from a fake one, for anyone
who types the address or follows a link here; no sign-in."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from branding.brands import resolve
from branding.notifications import portal_host
from core.portal_links import portal_url_for
from portal import sessions
from portal.hosts import host_tenant
from portal.pages import branding_of
from portal.state import portal


async def landing(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        current = await sessions.load(s, request)
        here = await host_tenant(s, request)
        look = await resolve(s, here) if here is not None else None
    signed_in = current is not None and current.kind == "recipient"
    base = portal_url_for(st.settings.portal_base_url, here.portal_host if here else None)
    return st.pages.render(
        "reader/landing.html",
        {
            **branding_of(here, look),
            "host": portal_host(base),
            "base_url": base,
            "has_session": signed_in,
        },
    )
