"""``GET /``: what this site is and how to tell a genuine notice from a fake one, for anyone
who types the address or follows a link here; no sign-in."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from branding.notifications import portal_host
from portal import sessions
from portal.state import portal


async def landing(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        current = await sessions.load(s, request)
    signed_in = current is not None and current.kind == "recipient"
    return st.pages.render(
        "reader/landing.html",
        {
            "host": portal_host(st.settings.portal_base_url),
            "base_url": st.settings.portal_base_url.rstrip("/"),
            "has_session": signed_in,
        },
    )
