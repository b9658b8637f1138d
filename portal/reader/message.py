"""``/messages/{id}`` and its ``/body`` frame: one message, its text or its sanitized HTML
body in a sandboxed frame, and the list of its attachments."""

from __future__ import annotations

import asyncio

from markupsafe import Markup
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from core.audit import audit
from core.mime_text import MAX_DEPTH, clean, clean_lines
from portal.reader.access import load_message, recipient_session, signed_in_context
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


async def message(request: Request) -> Response:
    st = portal(request)
    message_id = request.path_params["message_id"]
    async with st.services.db.session() as s:
        current = await recipient_session(s, request)
        msg, pm = await load_message(st, s, current, message_id)
        view = "text" if request.query_params.get("view") == "text" else "html"
        if view == "html" and not pm.html_object_id:
            view = "text"
        text = None
        if view == "text" and pm.text_object_id:
            raw = await st.services.vault.read(s, current.tenant_id, pm.text_object_id)
            text = clean_lines(raw.decode("utf-8", "replace"))
        ctx = await signed_in_context(s, current)
        await audit(s, current.tenant_id, current.email, "portal.message.viewed", msg.id)
        await s.commit()
    ctx.update(
        message_id=msg.id,
        # cleaned again: a message sealed before core.mime_text may hold raw bytes
        subject=clean(pm.subject),
        sender=clean(pm.sender),
        to=[clean(a) for a in pm.to],
        cc=[clean(a) for a in pm.cc],
        date=clean(pm.date),
        not_shown=pm.not_shown,
        max_depth=MAX_DEPTH,
        view=view,
        text=text,
        has_text=bool(pm.text_object_id),
        has_html=bool(pm.html_object_id),
        attachments=[
            {
                "index": i,
                "filename": part.filename or f"attachment-{i + 1}",
                "size": human_size(part.size),
                "sha256": part.sha256,
            }
            for i, part in enumerate(pm.attachments)
        ],
    )
    return st.pages.render("reader/message.html", ctx)


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
