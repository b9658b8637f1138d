"""``/messages/{id}/body``: a message's sanitized HTML body, for the sandboxed frame of the
conversation page (:mod:`portal.reader.thread`)."""

from __future__ import annotations

import asyncio

from markupsafe import Markup
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from portal.reader.access import load_message, recipient_session
from portal.sanitize import sanitize_html
from portal.security import BODY_CSP
from portal.state import portal

_SANITIZE_IN_THREAD = 64 * 1024


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"


async def body(request: Request) -> Response:
    """The sanitized HTML body, for the sandboxed frame on the message page."""
    st = portal(request)
    async with st.services.db.session() as s:
        current = await recipient_session(s, request)
        _msg, pm = await load_message(st, s, current, request.path_params["message_id"])
        if not pm.html_object_id:
            raise HTTPException(404)
        raw = await st.services.vault.read(s, current.tenant_id, pm.html_object_id)
    html = raw.decode("utf-8", "replace")
    if len(html) > _SANITIZE_IN_THREAD:
        clean = await asyncio.to_thread(sanitize_html, html)
    else:
        clean = sanitize_html(html)
    return st.pages.render(
        "reader/body.html",
        {"body": Markup(clean)},  # noqa: S704 - sanitized by nh3 just above
        headers={"Content-Security-Policy": BODY_CSP, "X-Frame-Options": "SAMEORIGIN"},
    )
