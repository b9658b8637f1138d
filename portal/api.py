"""The JSON API for programs (``/api/v1``): bearer API keys, scoped to one tenant.

This issue's part: a message's delivery evidence (states, dispositions, times; never its
content), so a tenant's admin can see what happened to a message and nothing of another
tenant's. Unknown and foreign ids answer the same 404.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core.accounts.authentication import authenticate_api_key
from core.models import Message, MessageRecipient, OutboxItem, OutboxRecipient, PortalAccess, Tenant
from portal.state import portal

API_VERSION = "1"


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def _tenant(request: Request) -> tuple[Tenant, str] | Response:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return _error(401, "missing bearer API key", {"WWW-Authenticate": "Bearer"})
    async with portal(request).services.db.session() as s:
        found = await authenticate_api_key(s, key)
    if found is None:
        return _error(401, "invalid API key", {"WWW-Authenticate": "Bearer"})
    return found


async def message_status(request: Request) -> Response:
    found = await _tenant(request)
    if isinstance(found, Response):
        return found
    tenant, _role = found
    message_id = request.path_params["message_id"][:40]
    async with portal(request).services.db.session() as s:
        msg = await s.get(Message, message_id)
        if msg is None or msg.tenant_id != tenant.id:
            return _error(404, "no such message")
        rcpts = (
            (await s.execute(select(MessageRecipient).where(MessageRecipient.message_id == msg.id)))
            .scalars()
            .all()
        )
        access = {
            a.recipient: a
            for a in (
                await s.execute(select(PortalAccess).where(PortalAccess.message_id == msg.id))
            ).scalars()
        }
        deliveries = (
            await s.execute(
                select(OutboxRecipient, OutboxItem)
                .join(OutboxItem, OutboxItem.id == OutboxRecipient.outbox_id)
                .where(OutboxItem.message_id == msg.id)
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
    body = {
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
                "opened_at": access[r.rcpt].first_opened_at if r.rcpt in access else None,
                "deliveries": by_rcpt.get(r.rcpt.lower(), []),
            }
            for r in rcpts
        ],
    }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "sealmail API", "version": API_VERSION},
    "components": {
        "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
    },
    "security": [{"apiKey": []}],
    "paths": {
        "/api/v1/messages/{message_id}": {
            "get": {
                "summary": "Delivery evidence of one of the tenant's messages (no content)",
                "parameters": [
                    {
                        "name": "message_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": {"description": "the message's states per recipient"},
                    "401": {"description": "missing or invalid API key"},
                    "404": {"description": "no such message for this tenant"},
                },
            }
        }
    },
}


async def openapi(request: Request) -> Response:
    from portal.admin_archive import ARCHIVE_PATHS
    from portal.admin_retention import HOLD_PATHS
    from portal.api_keys import PATHS as KEY_PATHS
    from portal.api_policy import POLICY_PATHS
    from portal.support import SUPPORT_PATHS

    paths = {**OPENAPI["paths"], **KEY_PATHS, **POLICY_PATHS, **ARCHIVE_PATHS, **HOLD_PATHS}
    paths.update(SUPPORT_PATHS)
    return JSONResponse({**OPENAPI, "paths": paths})
