"""``/api/v1/messages/{id}``: a message's delivery evidence (states, dispositions, times,
the recipients' portal access and events; never its content), so a tenant's keys can see
what happened to a message and nothing of another tenant's (a sender key: its owner's
messages only). The controls (``.../revoke``, ``.../expiry``, ``.../resend``) are
:mod:`portal.api.message_control`, the list and compose :mod:`portal.api.sent`. Unknown and
foreign ids answer the same 404.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from conversations import events
from conversations.models import MessageEvent
from core.models import (
    Message,
    MessageRecipient,
    OutboxItem,
    OutboxRecipient,
    PortalAccess,
    now,
)
from portal.api.common import caller_of_key, error
from portal.api.spec import TENANT_KEY, errors, json_body, ok, path_param
from portal.state import portal


def _access(a: PortalAccess | None) -> dict[str, Any] | None:
    if a is None:
        return None
    return {
        "expires_at": a.expires_at,
        "expired": not a.revoked and a.expires_at <= now(),
        "revoked": a.revoked,
        "revoked_at": a.revoked_at,
        "revoked_by": a.revoked_by,
        "first_opened_at": a.first_opened_at,
        "first_downloaded_at": a.first_downloaded_at,
        "replied_at": a.replied_at,
    }


def _event(e: MessageEvent) -> dict[str, Any]:
    try:
        detail = json.loads(e.detail or "{}")
    except ValueError:
        detail = {}
    return {"kind": e.kind, "at": e.at, "actor": e.actor, "detail": detail}


async def _body(s: AsyncSession, msg: Message) -> dict[str, Any]:
    rcpts = (
        (await s.execute(select(MessageRecipient).where(MessageRecipient.message_id == msg.id)))
        .scalars()
        .all()
    )
    access = {
        a.recipient.lower(): a
        for a in (
            await s.execute(
                select(PortalAccess).where(
                    PortalAccess.message_id == msg.id,
                    PortalAccess.tenant_id == msg.tenant_id,
                    PortalAccess.kind != "author",
                )
            )
        ).scalars()
    }
    deliveries = (
        await s.execute(
            select(OutboxRecipient, OutboxItem)
            .join(OutboxItem, OutboxItem.id == OutboxRecipient.outbox_id)
            .where(OutboxItem.message_id == msg.id, OutboxItem.tenant_id == msg.tenant_id)
        )
    ).all()
    by_rcpt: dict[str, list[dict[str, Any]]] = {}
    for r, item in deliveries:
        by_rcpt.setdefault(r.rcpt.lower(), []).append(
            {
                "kind": item.kind,
                "state": r.state,
                "attempts": r.attempts,
                "last_reply": r.last_reply,
                "updated_at": r.updated_at,
            }
        )
    happened: dict[str, list[dict[str, Any]]] = {}
    for e in await events.of_message(s, msg.tenant_id, msg.id):
        happened.setdefault(e.recipient, []).append(_event(e))
    return {
        "id": msg.id,
        "tenant_id": msg.tenant_id,
        "mail_from": msg.mail_from,
        "state": msg.state,
        "size": msg.size,
        "received_at": msg.received_at,
        "processed_at": msg.processed_at,
        "recipients": [
            {
                "address": r.rcpt,
                "disposition": r.disposition,
                "reason": r.reason,
                "opened_at": access[r.rcpt.lower()].first_opened_at
                if r.rcpt.lower() in access
                else None,
                "access": _access(access.get(r.rcpt.lower())),
                "deliveries": by_rcpt.get(r.rcpt.lower(), []),
                "events": happened.get(r.rcpt.lower(), []),
            }
            for r in rcpts
        ],
        "events": happened.get("", []),  # about every recipient at once
    }


async def tenant_message(s: AsyncSession, tenant_id: str, message_id: str) -> Message | None:
    msg = await s.get(Message, message_id[:40])
    return msg if msg is not None and msg.tenant_id == tenant_id else None


async def message_status(request: Request) -> Response:
    """A sender key sees its owner's messages only; any other answers the same 404."""
    caller = await caller_of_key(request, ("admin", "compliance", "sender"), "read messages")
    if isinstance(caller, Response):
        return caller
    async with portal(request).services.db.session() as s:
        msg = await tenant_message(s, caller.tenant.id, request.path_params["message_id"])
        if msg is not None and caller.scope == "sender" and msg.mail_from != caller.owner:
            msg = None
        if msg is None:
            return error(404, "no such message")
        body = await _body(s, msg)
    return JSONResponse(body, headers=NO_STORE)


NO_STORE = {"Cache-Control": "no-store"}


ID_PARAM = path_param("message_id", "the queue id")
__all__ = ["ID_PARAM", "NO_STORE", "errors", "json_body", "ok", "tenant_message"]
_EVENT = {
    "type": "object",
    "properties": {
        "kind": {
            "type": "string",
            "enum": list(events.KINDS),
        },
        "at": {"type": "number", "description": "Unix time"},
        "actor": {"type": "string"},
        "detail": {"type": "object"},
    },
}
_ACCESS = {
    "type": ["object", "null"],
    "description": "the recipient's portal access (null when not sealed to the portal)",
    "properties": {
        "expires_at": {"type": "number"},
        "expired": {"type": "boolean"},
        "revoked": {"type": "boolean"},
        "revoked_at": {"type": ["number", "null"]},
        "revoked_by": {"type": "string"},
        "first_opened_at": {"type": ["number", "null"]},
        "first_downloaded_at": {"type": ["number", "null"]},
        "replied_at": {"type": ["number", "null"]},
    },
}
_MESSAGE = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "tenant_id": {"type": "string"},
        "mail_from": {"type": "string"},
        "state": {"type": "string"},
        "size": {"type": "integer"},
        "received_at": {"type": "number"},
        "processed_at": {"type": ["number", "null"]},
        "recipients": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "address": {"type": "string"},
                    "disposition": {"type": "string"},
                    "reason": {"type": "string"},
                    "opened_at": {"type": ["number", "null"]},
                    "access": _ACCESS,
                    "deliveries": {"type": "array", "items": {"type": "object"}},
                    "events": {"type": "array", "items": _EVENT},
                },
            },
        },
        "events": {"type": "array", "items": _EVENT, "description": "events about everyone"},
    },
}


PATHS: dict[str, Any] = {
    "/api/v1/messages/{message_id}": {
        "get": {
            "summary": "A message's delivery evidence and events per recipient (no content)",
            "security": TENANT_KEY,
            "parameters": [ID_PARAM],
            "responses": {
                "200": ok("the message's states and events per recipient", _MESSAGE),
                **errors(("404", "no such message for this tenant")),
            },
        }
    },
}
