"""``/api/v1/messages/{id}/revoke|expiry|resend``: the sender's controls for programs, with an
API key of the message's tenant (admin and compliance keys on any of its messages, a sender
key on its owner's only, :mod:`portal.api.common`): revoke one recipient or all, set the
expiry, resend a notification with a new link. Each goes through
:mod:`conversations.control` (or :mod:`portal.sent.resend`), is recorded as a message event
and audited. JSON errors: 400 not a JSON object, 403 a key that may not, 404 an unknown or
foreign message (or a recipient without portal access), 409 nothing to act on, 422 a bad
value.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from conversations import control
from conversations.options import parse_when
from core.accounts.api_keys import SCOPES
from core.audit import audit
from core.errors import NotFound
from core.evidence.receipt import build
from core.models import Message, Tenant, now
from portal.api.common import Caller, bounded_body, caller_of_key, error
from portal.api.messages import ID_PARAM, NO_STORE, tenant_message
from portal.api.spec import TENANT_KEY, errors, json_body, ok
from portal.sent.resend import CannotResend, resend
from portal.state import portal

MAX_BODY = 4096


async def _json(request: Request) -> dict[str, Any] | Response:
    raw = await bounded_body(request, MAX_BODY)
    if raw is None:
        return error(413, "the request body is too large")
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        return error(400, "the request body is not JSON")
    if not isinstance(data, dict):
        return error(400, "the request body must be a JSON object")
    return data


def _recipient(data: dict[str, Any], required: bool) -> str | None | Response:
    value = data.get("recipient")
    if value is None or (isinstance(value, str) and not value.strip()):
        return error(422, "recipient is required") if required else None
    if not isinstance(value, str) or len(value) > 320:
        return error(422, "recipient must be an email address or null")
    return value.strip()


async def _act(request: Request, what: str) -> tuple[Caller, dict[str, Any]] | Response:
    """The caller's key (any scope: a sender key acts on its owner's messages only), the
    request's JSON object."""
    who = await caller_of_key(request, SCOPES, what)
    if isinstance(who, Response):
        return who
    data = await _json(request)
    if isinstance(data, Response):
        return data
    return who, data


async def _message(s: AsyncSession, caller: Caller, message_id: str) -> Message | None:
    """The tenant's message; for a sender key only its owner's (another answers 404)."""
    msg = await tenant_message(s, caller.tenant.id, message_id)
    if msg is not None and caller.scope == "sender" and msg.mail_from != caller.owner:
        return None
    return msg


async def revoke(request: Request) -> Response:
    """``POST /api/v1/messages/{id}/revoke`` ``{"recipient": "bob@x" | null}``."""
    found = await _act(request, "revoke messages")
    if isinstance(found, Response):
        return found
    caller, data = found
    actor = caller.actor
    recipient = _recipient(data, required=False)
    if isinstance(recipient, Response):
        return recipient
    async with portal(request).services.db.session() as s:
        msg = await _message(s, caller, request.path_params["message_id"])
        if msg is None:
            return error(404, "no such message")
        try:
            done = await control.revoke(s, msg, actor, recipient)
        except NotFound:
            return error(404, "that recipient has no portal access to this message")
        await s.commit()
    return JSONResponse({"id": msg.id, "revoked": done}, headers=NO_STORE)


async def expiry(request: Request) -> Response:
    """``POST /api/v1/messages/{id}/expiry`` ``{"expires": "2h" | RFC 3339 | "now"}``."""
    found = await _act(request, "change the expiry of messages")
    if isinstance(found, Response):
        return found
    caller, data = found
    actor = caller.actor
    value = data.get("expires")
    if not isinstance(value, str) or not value.strip():
        return error(422, "expires is required: a duration like 2h or 7d, or an RFC 3339 date")
    try:
        at = parse_when(value[:80], now(), allow_past=True)
    except ValueError as exc:
        return error(422, str(exc))
    recipient = _recipient(data, required=False)
    if isinstance(recipient, Response):
        return recipient
    async with portal(request).services.db.session() as s:
        msg = await _message(s, caller, request.path_params["message_id"])
        if msg is None:
            return error(404, "no such message")
        try:
            changed = await control.set_expiry(s, msg, actor, at, recipient)
        except NotFound:
            return error(404, "that recipient has no portal access to this message")
        if not changed:
            return error(409, "this message has no portal copies, so it has no expiry")
        await s.commit()
    when = datetime.datetime.fromtimestamp(at, datetime.UTC).isoformat().replace("+00:00", "Z")
    body = {"id": msg.id, "expires_at": at, "expires": when, "recipients": changed}
    return JSONResponse(body, headers=NO_STORE)


async def resend_notification(request: Request) -> Response:
    """``POST /api/v1/messages/{id}/resend`` ``{"recipient": "bob@x"}``."""
    found = await _act(request, "resend notifications")
    if isinstance(found, Response):
        return found
    caller, data = found
    tenant_id, actor = caller.tenant.id, caller.actor
    recipient = _recipient(data, required=True)
    if isinstance(recipient, Response):
        return recipient
    assert recipient is not None
    st = portal(request)
    async with st.services.db.session() as s:
        msg = await _message(s, caller, request.path_params["message_id"])
        tenant = await s.get(Tenant, tenant_id)
        if msg is None or tenant is None:
            return error(404, "no such message")
        try:
            address = await resend(st.services, s, tenant, msg, recipient, actor)
        except NotFound:
            return error(404, "that recipient has no portal access to this message")
        except CannotResend as exc:
            return error(409, str(exc))
        await s.commit()
    return JSONResponse({"id": msg.id, "recipient": address, "resent": True}, headers=NO_STORE)


async def receipt(request: Request) -> Response:
    """``GET /api/v1/messages/{id}/receipt``: the message's signed receipt
    (:mod:`core.evidence.receipt`), which anyone can check with the tenant's public key."""
    who = await caller_of_key(request, SCOPES, "read receipts")
    if isinstance(who, Response):
        return who
    st = portal(request)
    async with st.services.db.session() as s:
        msg = await _message(s, who, request.path_params["message_id"])
        if msg is None:
            return error(404, "no such message for this tenant")
        await audit(s, who.tenant.id, who.actor, "api.receipt.read", msg.id)
        await s.commit()
    return JSONResponse(await build(st.services, msg.id, who.tenant.id), headers=NO_STORE)


_NOT_FOUND = ("404", "no such message for this tenant, or the recipient has no portal access")
_FORBIDDEN = ("403", "this key's scope may not act on messages")
_BAD = ("400", "the body is not a JSON object")
_TOO_BIG = ("413", "the body is over 4 KiB")
_RECIPIENT = {"type": ["string", "null"], "format": "email"}

CONTROL_PATHS: dict[str, Any] = {
    "/api/v1/messages/{message_id}/receipt": {
        "get": {
            "summary": "The message's signed receipt: its digest, recipients and their events",
            "security": TENANT_KEY,
            "parameters": [ID_PARAM],
            "responses": {
                "200": ok(
                    "the receipt, signed with the tenant's Ed25519 key (check it with "
                    "/.well-known/sealmail/receipt-keys or sealmail receipt verify)",
                    {
                        "type": "object",
                        "required": ["receipt", "algorithm", "key_id", "signature"],
                        "properties": {
                            "receipt": {"type": "object"},
                            "algorithm": {"type": "string"},
                            "key_id": {"type": "string"},
                            "public_key": {"type": "string"},
                            "signature": {"type": "string"},
                        },
                    },
                ),
                **errors(("403", "this key's scope may not read receipts"), "404"),
            },
        }
    },
    "/api/v1/messages/{message_id}/revoke": {
        "post": {
            "summary": "Revoke one recipient's portal access, or everyone's (recipient null)",
            "security": TENANT_KEY,
            "parameters": [ID_PARAM],
            "requestBody": json_body({"type": "object", "properties": {"recipient": _RECIPIENT}}),
            "responses": {
                "200": ok(
                    "the addresses whose live access was revoked now",
                    {
                        "type": "object",
                        "properties": {
                            "id": {"type": "string"},
                            "revoked": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                ),
                **errors(
                    _BAD, _TOO_BIG, _FORBIDDEN, _NOT_FOUND, ("422", "recipient is not a string")
                ),
            },
        }
    },
    "/api/v1/messages/{message_id}/expiry": {
        "post": {
            "summary": "Set when portal access ends, for everyone or one recipient",
            "security": TENANT_KEY,
            "parameters": [ID_PARAM],
            "requestBody": json_body(
                {
                    "type": "object",
                    "required": ["expires"],
                    "properties": {
                        "expires": {
                            "type": "string",
                            "description": "a duration from now (90m, 2h, 7d, 2w), an RFC "
                            "3339 date-time or date, or now; a past time ends access at once",
                        },
                        "recipient": _RECIPIENT,
                    },
                }
            ),
            "responses": {
                "200": ok(
                    "the new expiry and the recipients it applies to",
                    {
                        "type": "object",
                        "properties": {
                            "id": {"type": "string"},
                            "expires_at": {"type": "number"},
                            "expires": {"type": "string", "format": "date-time"},
                            "recipients": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                ),
                **errors(
                    _BAD,
                    _TOO_BIG,
                    _FORBIDDEN,
                    _NOT_FOUND,
                    ("409", "the message has no portal copies"),
                    ("422", "expires is missing or not a duration or date"),
                ),
            },
        }
    },
    "/api/v1/messages/{message_id}/resend": {
        "post": {
            "summary": "Send a recipient a new notification with a new link (the old stops)",
            "security": TENANT_KEY,
            "parameters": [ID_PARAM],
            "requestBody": json_body(
                {
                    "type": "object",
                    "required": ["recipient"],
                    "properties": {"recipient": {"type": "string", "format": "email"}},
                }
            ),
            "responses": {
                "200": ok(
                    "a new notification is queued",
                    {
                        "type": "object",
                        "properties": {
                            "id": {"type": "string"},
                            "recipient": {"type": "string"},
                            "resent": {"type": "boolean"},
                        },
                    },
                ),
                **errors(
                    _BAD,
                    _TOO_BIG,
                    _FORBIDDEN,
                    _NOT_FOUND,
                    ("409", "the access is revoked or expired"),
                    ("422", "recipient is missing"),
                ),
            },
        }
    },
}
