"""``/admin/quarantine``: the held messages, one held message with a preview of its content
(to an officer, audited), and releasing or rejecting it.

Every lookup is scoped by the signed-in admin's tenant; another tenant's id answers the
same 404 as an unknown one. Lists show envelopes, rules and reasons, never content; the
content of a held message is shown only on its own page, to an officer, and that is audited.
"""

from __future__ import annotations

import asyncio
import html
from email.message import EmailMessage
from typing import Any

import nh3
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core import quarantine
from core.audit import audit
from core.errors import NotFound
from core.mime_text import clean_lines, header_text, parse_message
from core.models import Message
from portal.admin.context import page_context, quarantine_officer
from portal.admin.decisions import decisions_of
from portal.admin.doors import checked_form, current_admin
from portal.admin.notices import compose_reject_notice
from portal.forms import field
from portal.state import portal

PREVIEW_LIMIT = 5 * 1024 * 1024  # larger originals are not opened in the browser
BODY_CHARS = 100_000


async def quarantine_list(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        admin = await quarantine_officer(st, s, request)
        if isinstance(admin, Response):
            return admin
        rows = await quarantine.list_held(s, admin.tenant.id)
    items = [
        {
            "id": h.id,
            "created_at": h.created_at,
            "mail_from": m.mail_from or "<>",
            "recipients": quarantine.recipients_of(h),
            "rule": h.rule,
            "reason": h.reason,
        }
        for h, m in rows
    ]
    return st.pages.render("admin/quarantine.html", page_context(admin, items=items))


def _plain(part: EmailMessage) -> str:
    content = part.get_content()
    if part.get_content_type() == "text/html":
        content = html.unescape(nh3.clean(content, tags=set(), strip_comments=True))
    return str(content)[:BODY_CHARS]


def _preview(raw: bytes) -> dict[str, Any]:
    """Subject, the text of the body (HTML reduced to text: nothing of it is rendered) and
    attachment names; CPU work, run off the loop."""
    msg = parse_message(raw)
    body = msg.get_body(("plain", "html"))
    text = ""
    if isinstance(body, EmailMessage):
        try:
            text = _plain(body)
        except (LookupError, ValueError):
            text = "(the body could not be decoded)"
    attachments = []
    for part in msg.iter_attachments():
        payload = part.get_payload(decode=True)
        attachments.append(
            {
                "filename": part.get_filename() or "(no name)",
                "type": part.get_content_type(),
                "size": len(payload) if isinstance(payload, bytes) else 0,
            }
        )
    return {
        "subject": header_text(msg, "subject"),
        "from_header": header_text(msg, "from"),
        "to_header": header_text(msg, "to"),
        "text": clean_lines(text),
        "attachments": attachments,
    }


async def held_detail(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        admin = await quarantine_officer(st, s, request)
        if isinstance(admin, Response):
            return admin
        try:
            held = await quarantine.get(s, request.path_params["held_id"], admin.tenant.id)
        except NotFound:
            raise HTTPException(404) from None
        msg = await s.get(Message, held.message_id)
        if msg is None or msg.tenant_id != admin.tenant.id:
            raise HTTPException(404)
        decisions = await decisions_of(s, msg.id, admin.tenant.id)
        preview: dict[str, Any] | None = None
        if msg.size <= PREVIEW_LIMIT:
            raw = await st.services.vault.read(s, admin.tenant.id, msg.raw_object_id)
            preview = await asyncio.to_thread(_preview, raw)
        await audit(s, admin.tenant.id, admin.actor, "quarantine.view", held.id, message=msg.id)
        await s.commit()
    ctx = page_context(
        admin,
        held=held,
        message=msg,
        recipients=quarantine.recipients_of(held),
        decisions=decisions,
        preview=preview,
        notice=request.query_params.get("done", "")[:20],
    )
    return st.pages.render("admin/held.html", ctx)


async def _decide(request: Request, action: str) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        admin = await current_admin(s, request)
        if admin is None:
            raise HTTPException(401)
        form = await checked_form(request, admin)
        if not admin.may("quarantine"):
            raise HTTPException(404)
        held_id = request.path_params["held_id"]
        try:
            if action == "release":
                held = await quarantine.release(s, held_id, admin.tenant.id, admin.actor)
            else:
                held = await quarantine.reject(
                    st.services,
                    s,
                    held_id,
                    admin.tenant.id,
                    admin.actor,
                    note=field(form, "note"),
                    compose_notice=compose_reject_notice,
                )
        except NotFound:
            raise HTTPException(404) from None
        except quarantine.AlreadyDecided:
            return RedirectResponse(f"/admin/quarantine/{held_id}?done=already", status_code=303)
    return RedirectResponse(f"/admin/quarantine/{held.id}?done={action}", status_code=303)


async def release(request: Request) -> Response:
    return await _decide(request, "release")


async def reject(request: Request) -> Response:
    return await _decide(request, "reject")
