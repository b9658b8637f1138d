"""``/verify``: anyone checks a notice's reference code (:mod:`branding.references`).

A real code is confirmed with the sender's address, the tenant's name and the date — what
the notice itself already says, so a forwarded code reveals nothing new; never the subject,
the content or the recipient. An unknown code is said to be unknown, with what to do. On a
tenant's own portal host only that tenant's codes are known. Checks are limited per client
address (``VERIFY_LIMIT`` in ``VERIFY_WINDOW``) so codes cannot be guessed at speed; past the
limit the client gets a 429 page that says when to come back.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from branding import references
from branding.brands import resolve
from branding.notifications import format_time
from portal import ratelimit
from portal.forms import field, read_form
from portal.hosts import host_tenant
from portal.pages import branding_of
from portal.security import same_origin_request
from portal.state import client_ip, portal

VERIFY_LIMIT = 20
VERIFY_WINDOW = 600.0


async def _context(request: Request, **extra: Any) -> dict[str, Any]:
    st = portal(request)
    async with st.services.db.session() as s:
        here = await host_tenant(s, request)
        look = await resolve(s, here) if here is not None else None
    return {**branding_of(here, look), "code": "", "result": None, **extra}


async def verify_form(request: Request) -> Response:
    st = portal(request)
    return st.pages.render("reader/verify.html", await _context(request))


async def verify_check(request: Request) -> Response:
    st = portal(request)
    if not same_origin_request(request, st.origins):
        return st.pages.error(403)
    form = await read_form(request)
    code = field(form, "code").strip()[:40]
    bucket = f"verify:{client_ip(request)}"
    async with st.services.db.session() as s:
        if await ratelimit.exceeded(s, [(bucket, VERIFY_LIMIT)], VERIFY_WINDOW):
            ctx = await _context(request, code=code, result="limited")
            ctx["minutes"] = int(VERIFY_WINDOW // 60)
            return st.pages.render("reader/verify.html", ctx, status=429)
        await ratelimit.record(s, [bucket], VERIFY_WINDOW)
        here = await host_tenant(s, request)
        found = await references.lookup(s, code, here.id if here else None) if code else None
        await s.commit()
    if not code:
        ctx = await _context(request, result="empty")
        return st.pages.render("reader/verify.html", ctx, status=400)
    if found is None:
        ctx = await _context(request, code=code, result="unknown")
        return st.pages.render("reader/verify.html", ctx)
    ctx = await _context(
        request,
        code=references.canonical(code),
        result="genuine",
        sender=found.sender,
        from_tenant=found.tenant_name,
        sent=format_time(found.sent_at),
    )
    return st.pages.render("reader/verify.html", ctx)
