""" "Why was this encrypted?": a message's policy decisions made readable, and the page
``/admin/messages/{id}`` that shows them per recipient (``/sent`` shows the same)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from core import quarantine
from core.models import Message, MessageRecipient
from core.policy.models import HeldMessage, PolicyDecision
from portal.admin import why
from portal.admin.context import page_context, quarantine_officer
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
    ctx = page_context(admin, message=msg, decisions=decisions, recipients=rcpts, held=held)
    return st.pages.render("admin/message.html", ctx)
