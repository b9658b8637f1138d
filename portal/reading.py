"""What a verified recipient sees: the inbox, a message, its body frame and attachments.

Every lookup is scoped by the session's tenant and address: a message is shown only when a
live ``PortalAccess`` for exactly that pair exists; otherwise the same 404 as for a message
that does not exist.
"""

from __future__ import annotations

import asyncio
import email.utils
import re
import unicodedata
from typing import Any
from urllib.parse import quote

from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from core.audit import audit
from core.models import Message, PortalAccess, PortalSession, SealedObject, Tenant, now
from core.portal_message import PortalMessage
from portal import sessions
from portal.forms import field, read_form
from portal.pages import branding_of
from portal.sanitize import sanitize_html
from portal.security import BODY_CSP, DOWNLOAD_CSP, check_session_token, same_origin_request
from portal.state import PortalState, portal

INBOX_LIMIT = 200
_SANITIZE_IN_THREAD = 64 * 1024
SAFE_TYPES = {
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "text/plain",
    "text/csv",
    "application/zip",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
}


def _live_access():
    return (PortalAccess.revoked.is_(False), PortalAccess.expires_at > now())


async def _session_or_401(s: AsyncSession, request: Request) -> PortalSession:
    current = await sessions.load(s, request)
    if current is None or current.kind != "recipient":  # admin and sender sessions: not here
        raise HTTPException(401)
    return current


async def _load(
    st: PortalState, s: AsyncSession, current: PortalSession, message_id: str
) -> tuple[Message, PortalMessage]:
    if len(message_id) > 64:
        raise HTTPException(404)
    expired = await s.execute(
        select(PortalAccess.id)
        .join(Message, Message.id == PortalAccess.message_id)
        .where(
            PortalAccess.message_id == message_id,
            PortalAccess.tenant_id == current.tenant_id,
            func.lower(PortalAccess.recipient) == current.email,
            PortalAccess.revoked.is_(False),
            Message.portal_expired_at.is_not(None),
        )
        .limit(1)
    )
    if expired.first() is not None:  # the sweep ended its portal retention
        raise HTTPException(410)
    stmt = (
        select(PortalAccess.id)
        .where(
            PortalAccess.message_id == message_id,
            PortalAccess.tenant_id == current.tenant_id,
            func.lower(PortalAccess.recipient) == current.email,
            *_live_access(),
        )
        .limit(1)
    )
    if (await s.execute(stmt)).scalar() is None:
        raise HTTPException(404)
    msg = await s.get(Message, message_id)
    if msg is None or msg.tenant_id != current.tenant_id or not msg.meta_object_id:
        raise HTTPException(404)
    meta = await st.services.vault.read(s, current.tenant_id, msg.meta_object_id)
    return msg, PortalMessage.from_json(meta)


async def _signed_in_context(s: AsyncSession, current: PortalSession) -> dict[str, Any]:
    tenant = await s.get(Tenant, current.tenant_id)
    return {
        **branding_of(tenant),
        "signed_in": True,
        "csrf_token": current.csrf_token,
        "email": current.email,
    }


def _short_date(header: str) -> str:
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError):
        return header[:40]
    return when.strftime("%d %b %Y")


async def inbox(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        current = await _session_or_401(s, request)
        stmt = (
            select(Message)
            .join(PortalAccess, PortalAccess.message_id == Message.id)
            .where(
                PortalAccess.tenant_id == current.tenant_id,
                Message.tenant_id == current.tenant_id,
                func.lower(PortalAccess.recipient) == current.email,
                Message.meta_object_id.is_not(None),
                Message.portal_expired_at.is_(None),
                *_live_access(),
            )
            .order_by(Message.received_at.desc())
            .limit(INBOX_LIMIT)
        )
        items, seen = [], set()
        for msg in (await s.execute(stmt)).scalars().all():
            if msg.id in seen:
                continue
            seen.add(msg.id)
            assert msg.meta_object_id is not None
            pm = PortalMessage.from_json(
                await st.services.vault.read(s, current.tenant_id, msg.meta_object_id)
            )
            items.append(
                {
                    "id": msg.id,
                    "sender": pm.sender_name or pm.sender,
                    "subject": pm.subject,
                    "date": _short_date(pm.date) if pm.date else "",
                }
            )
        ctx = await _signed_in_context(s, current)
    return st.pages.render("inbox.html", {**ctx, "items": items})


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
        current = await _session_or_401(s, request)
        msg, pm = await _load(st, s, current, message_id)
        view = "text" if request.query_params.get("view") == "text" else "html"
        if view == "html" and not pm.html_object_id:
            view = "text"
        text = None
        if view == "text" and pm.text_object_id:
            raw = await st.services.vault.read(s, current.tenant_id, pm.text_object_id)
            text = raw.decode("utf-8", "replace")
        ctx = await _signed_in_context(s, current)
        await audit(s, current.tenant_id, current.email, "portal.message.viewed", msg.id)
        await s.commit()
    ctx.update(
        message_id=msg.id,
        subject=pm.subject,
        sender=pm.sender,
        to=list(pm.to),
        cc=list(pm.cc),
        date=pm.date,
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
    return st.pages.render("message.html", ctx)


async def body(request: Request) -> Response:
    """The sanitized HTML body, for the sandboxed frame on the message page."""
    st = portal(request)
    async with st.services.db.session() as s:
        current = await _session_or_401(s, request)
        _msg, pm = await _load(st, s, current, request.path_params["message_id"])
        if not pm.html_object_id:
            raise HTTPException(404)
        raw = await st.services.vault.read(s, current.tenant_id, pm.html_object_id)
    html = raw.decode("utf-8", "replace")
    if len(html) > _SANITIZE_IN_THREAD:
        clean = await asyncio.to_thread(sanitize_html, html)
    else:
        clean = sanitize_html(html)
    return st.pages.render(
        "body.html",
        {"body": Markup(clean)},  # noqa: S704 - sanitized by nh3 just above
        headers={"Content-Security-Policy": BODY_CSP, "X-Frame-Options": "SAMEORIGIN"},
    )


_UNSAFE_FILENAME = re.compile(r'[\x00-\x1f\x7f"\\/:*?<>|;%]')


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback and the UTF-8 name (RFC 6266 / 5987)."""
    name = unicodedata.normalize("NFC", filename)
    name = _UNSAFE_FILENAME.sub("_", name).strip().lstrip(".") or "attachment"
    name = name[:180]
    fallback = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    fallback = re.sub(r"[^A-Za-z0-9._ ()+=@,-]", "_", fallback).strip().lstrip(".")
    fallback = fallback or "attachment"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def download_type(content_type: str) -> str:
    base = content_type.split(";", 1)[0].strip().lower()
    return base if base in SAFE_TYPES else "application/octet-stream"


async def attachment(request: Request) -> Response:
    st = portal(request)
    n: int = request.path_params["n"]
    async with st.services.db.session() as s:
        current = await _session_or_401(s, request)
        msg, pm = await _load(st, s, current, request.path_params["message_id"])
        if not 0 <= n < len(pm.attachments):
            raise HTTPException(404)
        part = pm.attachments[n]
        row = await s.get(SealedObject, part.object_id)
        if row is None or row.tenant_id != current.tenant_id:
            raise HTTPException(404)
        stream = await st.services.vault.stream(s, current.tenant_id, part.object_id)
        await audit(
            s, current.tenant_id, current.email, "portal.attachment.downloaded", msg.id, part=n
        )
        await s.commit()
    headers = {
        "Content-Disposition": content_disposition(part.filename or f"attachment-{n + 1}"),
        "Content-Length": str(row.size),
        "Content-Security-Policy": DOWNLOAD_CSP,
        "X-Content-Type-Options": "nosniff",
    }
    return StreamingResponse(stream, media_type=download_type(part.content_type), headers=headers)


async def logout(request: Request) -> Response:
    st = portal(request)
    if not same_origin_request(request, st.origins):
        raise HTTPException(403)
    form = await read_form(request)
    async with st.services.db.session() as s:
        current = await sessions.load(s, request)
        if current is not None:
            if not check_session_token(current.csrf_token, field(form, "csrf")):
                raise HTTPException(403)
            await sessions.destroy(s, request)
            await audit(s, current.tenant_id, current.email, "portal.signed_out")
            await s.commit()
    response: Response = st.pages.render("signed_out.html")
    sessions.clear_cookie(response)
    return response
