"""The tenant admin's pages: overview, the quarantine, and "why was this encrypted?".

Every lookup is scoped by the signed-in admin's tenant; another tenant's id answers the
same 404 as an unknown one. Lists show envelopes, rules and reasons, never content; the
content of a held message is shown only on its own page, to an officer, and that is audited.
"""

from __future__ import annotations

import asyncio
import html
import json
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from typing import Any

import nh3
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from branding.notifications import format_time
from core import quarantine
from core.audit import audit
from core.errors import NotFound
from core.models import AuditEvent, Message, MessageRecipient
from core.policy.models import HeldMessage, PolicyDecision
from portal.admin_auth import Admin, checked_form, current_admin
from portal.admin_notice import compose_reject_notice
from portal.forms import field
from portal.pages import branding_of
from portal.state import PortalState, portal

PREVIEW_LIMIT = 5 * 1024 * 1024  # larger originals are not opened in the browser
BODY_CHARS = 100_000
RECENT = 20


def _context(admin: Admin, **extra: Any) -> dict[str, Any]:
    return {
        **branding_of(admin.tenant),
        "admin_email": admin.user.email,
        "admin_role": admin.user.role,
        "csrf_token": admin.session.csrf_token,
        "fmt_time": format_time,
        **extra,
    }


async def _signed_in(st: PortalState, s: AsyncSession, request: Request) -> Admin | Response:
    admin = await current_admin(s, request)
    if admin is None:
        return RedirectResponse("/admin/login", status_code=303)
    if not admin.may("quarantine"):
        raise HTTPException(404)
    return admin


async def overview(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        admin = await _signed_in(st, s, request)
        if isinstance(admin, Response):
            return admin
        held = await quarantine.count_held(s, admin.tenant.id)
        recent = (
            (
                await s.execute(
                    select(PolicyDecision)
                    .where(PolicyDecision.tenant_id == admin.tenant.id)
                    .order_by(PolicyDecision.at.desc(), PolicyDecision.id.desc())
                    .limit(RECENT)
                )
            )
            .scalars()
            .all()
        )
        events = (
            (
                await s.execute(
                    select(AuditEvent)
                    .where(
                        AuditEvent.tenant_id == admin.tenant.id,
                        AuditEvent.action.like("quarantine.%"),
                    )
                    .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
                    .limit(10)
                )
            )
            .scalars()
            .all()
        )
        waiting = (
            (
                await s.execute(
                    select(Message)
                    .where(
                        Message.tenant_id == admin.tenant.id,
                        or_(
                            and_(Message.state == "received", Message.attempts > 0),
                            Message.state == "failed",
                        ),
                    )
                    .order_by(Message.received_at.desc())
                    .limit(RECENT)
                )
            )
            .scalars()
            .all()
        )
    ctx = _context(admin, held_count=held, decisions=recent, events=events, waiting=waiting)
    return st.pages.render("portal/admin_overview.html", ctx)


async def quarantine_list(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        admin = await _signed_in(st, s, request)
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
    return st.pages.render("portal/admin_quarantine.html", _context(admin, items=items))


def _plain(part: EmailMessage) -> str:
    content = part.get_content()
    if part.get_content_type() == "text/html":
        content = html.unescape(nh3.clean(content, tags=set(), strip_comments=True))
    return str(content)[:BODY_CHARS]


def _preview(raw: bytes) -> dict[str, Any]:
    """Subject, the text of the body (HTML reduced to text: nothing of it is rendered) and
    attachment names; CPU work, run off the loop."""
    msg = BytesParser(policy=default_policy).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
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
        "subject": str(msg.get("subject", "")),
        "from_header": str(msg.get("from", "")),
        "to_header": str(msg.get("to", "")),
        "text": text,
        "attachments": attachments,
    }


def explain(decision: PolicyDecision) -> dict[str, Any]:
    """The decision's explanation, made readable: rules looked at, detector counts, rest."""
    try:
        data = json.loads(decision.explanation or "{}")
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {"explanation": data}
    rules = [r for r in data.pop("rules", []) or [] if isinstance(r, dict)]
    detectors = data.pop("detectors", {}) or {}
    if not isinstance(detectors, dict):
        detectors = {}
    other = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
    return {"rules": rules, "detectors": detectors, "other": other}


async def _decisions(s: AsyncSession, message_id: str, tenant_id: str) -> list[dict[str, Any]]:
    return [{"row": d, **explain(d)} for d in await quarantine.decisions(s, message_id, tenant_id)]


async def held_detail(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        admin = await _signed_in(st, s, request)
        if isinstance(admin, Response):
            return admin
        try:
            held = await quarantine.get(s, request.path_params["held_id"], admin.tenant.id)
        except NotFound:
            raise HTTPException(404) from None
        msg = await s.get(Message, held.message_id)
        if msg is None or msg.tenant_id != admin.tenant.id:
            raise HTTPException(404)
        decisions = await _decisions(s, msg.id, admin.tenant.id)
        preview: dict[str, Any] | None = None
        if msg.size <= PREVIEW_LIMIT:
            raw = await st.services.vault.read(s, admin.tenant.id, msg.raw_object_id)
            preview = await asyncio.to_thread(_preview, raw)
        await audit(s, admin.tenant.id, admin.actor, "quarantine.view", held.id, message=msg.id)
        await s.commit()
    ctx = _context(
        admin,
        held=held,
        message=msg,
        recipients=quarantine.recipients_of(held),
        decisions=decisions,
        preview=preview,
        notice=request.query_params.get("done", "")[:20],
    )
    return st.pages.render("portal/admin_held.html", ctx)


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


async def message_decisions(request: Request) -> Response:
    """ "Why was this encrypted?": the message's decision per recipient."""
    st = portal(request)
    async with st.services.db.session() as s:
        admin = await _signed_in(st, s, request)
        if isinstance(admin, Response):
            return admin
        message_id = request.path_params["message_id"][:40]
        msg = await s.get(Message, message_id)
        if msg is None or msg.tenant_id != admin.tenant.id:
            raise HTTPException(404)
        decisions = await _decisions(s, msg.id, admin.tenant.id)
        rcpts = (
            (await s.execute(select(MessageRecipient).where(MessageRecipient.message_id == msg.id)))
            .scalars()
            .all()
        )
        held = (
            (
                await s.execute(
                    select(HeldMessage).where(
                        HeldMessage.message_id == msg.id, HeldMessage.tenant_id == admin.tenant.id
                    )
                )
            )
            .scalars()
            .all()
        )
    ctx = _context(admin, message=msg, decisions=decisions, recipients=rcpts, held=held)
    return st.pages.render("portal/admin_message.html", ctx)
