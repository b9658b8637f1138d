""" "Why was this encrypted?": a message's policy decisions made readable, and the page
``/admin/messages/{id}`` that shows them per recipient (``/sent`` shows the same), with its
recipients' portal access and the officer's revoke (``POST /admin/messages/{id}/revoke``)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from branding.notifications import format_time
from conversations import control
from core import quarantine
from core.errors import NotFound
from core.models import Message, MessageRecipient, PortalAccess, now
from core.policy.models import HeldMessage, PolicyDecision
from portal.admin import why
from portal.admin.context import page_context, quarantine_officer
from portal.admin.doors import checked_form
from portal.forms import field
from portal.state import portal


def explain(decision: PolicyDecision) -> dict[str, Any]:
    """The decision's explanation, made readable (:mod:`portal.admin.why`): ``sentences``
    (the first says why), ``trail`` (each rule looked at, as a sentence); the parsed
    ``rules``, ``detectors`` and ``other`` stay for callers that want the fields."""
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
    said = why.sentences(
        decision.action or "",
        decision.rule or "",
        decision.disposition or "",
        {**data, "detectors": detectors},
    )
    other = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
    return {
        "rules": rules,
        "detectors": detectors,
        "other": other,
        "sentences": said,
        "trail": why.trail(rules),
    }


async def decisions_of(s: AsyncSession, message_id: str, tenant_id: str) -> list[dict[str, Any]]:
    return [{"row": d, **explain(d)} for d in await quarantine.decisions(s, message_id, tenant_id)]


async def message_decisions(request: Request) -> Response:
    """ "Why was this encrypted?": the message's decision per recipient."""
    st = portal(request)
    async with st.services.db.session() as s:
        admin = await quarantine_officer(st, s, request)
        if isinstance(admin, Response):
            return admin
        message_id = request.path_params["message_id"][:40]
        msg = await s.get(Message, message_id)
        if msg is None or msg.tenant_id != admin.tenant.id:
            raise HTTPException(404)
        decisions = await decisions_of(s, msg.id, admin.tenant.id)
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
        access = await control.accesses(s, msg)
    ctx = page_context(
        admin,
        message=msg,
        decisions=decisions,
        recipients=rcpts,
        held=held,
        access=[_access_view(a) for a in access],
        notice=REVOKED if request.query_params.get("done") == "revoked" else "",
    )
    return st.pages.render("admin/message.html", ctx)


REVOKED = "Done: the access was revoked. It stops working at once, also for a page already open."


def _access_view(a: PortalAccess) -> dict[str, Any]:
    """A recipient's portal access in a sentence, and whether it can still be revoked."""
    if a.revoked:
        by = f" by {a.revoked_by}" if a.revoked_by else ""
        at = f" on {format_time(a.revoked_at)}" if a.revoked_at else ""
        return {"rcpt": a.recipient, "live": False, "said": f"Revoked{by}{at}."}
    if a.expires_at <= now():
        return {"rcpt": a.recipient, "live": False, "said": f"Expired {format_time(a.expires_at)}."}
    opened = f"opened {format_time(a.first_opened_at)}" if a.first_opened_at else "not opened yet"
    return {
        "rcpt": a.recipient,
        "live": True,
        "said": f"Can open it until {format_time(a.expires_at)}; {opened}.",
    }


async def revoke(request: Request) -> Response:
    """``POST /admin/messages/{id}/revoke``: an officer revokes one recipient (field
    ``recipient``) or everyone (empty) of any message of the tenant."""
    st = portal(request)
    async with st.services.db.session() as s:
        admin = await quarantine_officer(st, s, request)
        if isinstance(admin, Response):
            return admin
        msg = await s.get(Message, request.path_params["message_id"][:40])
        if msg is None or msg.tenant_id != admin.tenant.id:
            raise HTTPException(404)
        form = await checked_form(request, admin)
        recipient = field(form, "recipient")[:320].strip() or None
        try:
            await control.revoke(s, msg, admin.actor, recipient)
        except NotFound:
            raise HTTPException(404) from None
        await s.commit()
    return RedirectResponse(f"/admin/messages/{msg.id}?done=revoked", status_code=303)
