"""``/api/v1/messages``: the tenant's messages for programs, newest first and paged
(``GET``; a sender key sees only its owner's), and compose/send (``POST``), which takes the
SAME path as ``/compose`` in the browser: the fields are checked by
:func:`portal.sent.compose_form.read`, the message is built by :mod:`conversations.compose`
and enters the gateway by :func:`conversations.submit.submit` (origin ``compose``), so
policy, sealing, archive and evidence run on it like on any message. 202 with its id: it is
queued, not yet delivered; ``GET /api/v1/messages/{id}`` follows it.

Who may send: an admin key as any address of the tenant's domains, a sender key only as its
owner (see :mod:`portal.api.common`); a compliance key may not send. The body is bounded
(the gateway's message size, base64 counted) before it is parsed."""

from __future__ import annotations

import base64
import binascii
import tempfile
from typing import Any

from sqlalchemy import or_, select
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from conversations.compose import Upload
from core.accounts.api_keys import SCOPES
from core.accounts.domains import tenant_domains
from core.addresses import InvalidAddress, parse_address
from core.audit import audit
from core.models import Message, Tenant
from portal.api.common import Caller, caller_of_key, error, json_object, limit_of
from portal.api.messages import NO_STORE
from portal.api.spec import PAGING, TENANT_KEY, errors, json_body, ok, query_param
from portal.sent.compose import message_size, send_checked
from portal.sent.compose_form import ComposeForm, read
from portal.state import client_ip, portal

MAX_ATTACHMENTS = 100
_COMPOSE_WORDS = ("send messages", "list messages")


def _summary(m: Message) -> dict[str, Any]:
    return {
        "id": m.id,
        "mail_from": m.mail_from,
        "state": m.state,
        "size": m.size,
        "origin": m.origin,
        "received_at": m.received_at,
        "processed_at": m.processed_at,
    }


async def list_messages(request: Request) -> Response:
    """``GET /api/v1/messages?sender=&limit=&before=``."""
    caller = await caller_of_key(request, SCOPES, _COMPOSE_WORDS[1])
    if isinstance(caller, Response):
        return caller
    limit = limit_of(request)
    if isinstance(limit, Response):
        return limit
    sender = request.query_params.get("sender", "").strip().lower()[:320]
    before = request.query_params.get("before", "")[:40]
    stmt = select(Message).where(Message.tenant_id == caller.tenant.id)
    if caller.scope == "sender":
        stmt = stmt.where(Message.mail_from == (caller.owner or "\0"))
    if sender:
        stmt = stmt.where(Message.mail_from == sender)
    async with portal(request).services.db.session() as s:
        if before:
            mark = await s.get(Message, before)
            if mark is None or mark.tenant_id != caller.tenant.id:
                return error(422, "before must be the next_before of an earlier page")
            stmt = stmt.where(
                or_(
                    Message.received_at < mark.received_at,
                    (Message.received_at == mark.received_at) & (Message.id < mark.id),
                )
            )
        stmt = stmt.order_by(Message.received_at.desc(), Message.id.desc()).limit(limit + 1)
        rows = list((await s.execute(stmt)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    body = {
        "messages": [_summary(m) for m in rows],
        "next_before": rows[-1].id if more and rows else None,
    }
    return JSONResponse(body, headers=NO_STORE)


def _from_address(caller: Caller, wanted: Any, domains: list[str]) -> str | Response:
    if caller.scope == "sender":
        if not caller.owner:
            return error(403, "this sender key has no owner address, so it may not send")
        if wanted not in (None, "") and str(wanted).strip().lower() != caller.owner:
            return error(403, "a sender key sends only as its owner")
        return caller.owner
    if not isinstance(wanted, str) or not wanted.strip():
        return error(422, "from is required: an address of the tenant's domains")
    try:
        address = parse_address(wanted.strip()[:320])
    except InvalidAddress:
        return error(422, "from is not an email address")
    if address.rpartition("@")[2] not in domains:
        return error(422, "from must be an address of one of the tenant's domains")
    return address


def _addresses(value: Any) -> str | None:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    return None


def _form(data: dict[str, Any], tenant: Tenant) -> FormData | Response:
    """The JSON as the compose form's fields, so :func:`read` checks it the same way; what
    is left out takes the tenant's default, as the blank form does."""
    blank = ComposeForm.blank(tenant)
    data = {"reply": blank.reply, "forward": blank.forward, "receipt": blank.receipt, **data}
    fields: list[tuple[str, str]] = []
    for name in ("to", "cc", "bcc"):
        text = _addresses(data.get(name))
        if text is None:
            return error(422, f"{name} must be an address or a list of addresses")
        fields.append((name, text))
    for name in ("subject", "text", "reply", "forward", "passphrase", "passphrase_hint"):
        value = data.get(name, "")
        if not isinstance(value, str):
            return error(422, f"{name} must be a string")
        if value or name in ("subject", "text"):
            fields.append((name, value))
    expires = data.get("expires", "")
    if not isinstance(expires, str):
        return error(422, "expires must be 1d, 7d, 30d or a date like 2030-01-31")
    if expires in ("", "1d", "7d", "30d"):
        fields.append(("expires", expires))
    else:
        fields += [("expires", "date"), ("expires_date", expires)]
    receipt = data.get("receipt", False)
    if not isinstance(receipt, bool):
        return error(422, "receipt must be true or false")
    fields.append(("receipt", "yes" if receipt else "no"))
    return FormData(fields)


def _uploads(value: Any, budget: int) -> list[Upload] | Response:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_ATTACHMENTS:
        return error(422, f"attachments must be a list of at most {MAX_ATTACHMENTS}")
    out: list[Upload] = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("content_base64"), str):
            return error(422, "each attachment needs name, content_type and content_base64")
        name, ctype = item.get("name", "attachment"), item.get("content_type", "")
        if not isinstance(name, str) or not isinstance(ctype, str):
            return error(422, "an attachment's name and content_type must be strings")
        if ctype and ("/" not in ctype or any(c in ctype for c in '\r\n;"')):
            return error(422, "an attachment's content_type must look like text/plain")
        try:
            content = base64.b64decode(item["content_base64"], validate=True)
        except (binascii.Error, ValueError):
            return error(422, "an attachment's content_base64 is not base64")
        budget -= len(content)
        if budget < 0:
            return error(413, "the attachments are larger than a message may be")
        spool = tempfile.SpooledTemporaryFile(max_size=1024 * 1024)
        spool.write(content)
        out.append(Upload(name[:200] or "attachment", ctype[:100], spool, len(content)))  # type: ignore[arg-type]
    return out


async def compose(request: Request) -> Response:
    """``POST /api/v1/messages``: compose and send a secure message."""
    caller = await caller_of_key(request, ("admin", "sender"), _COMPOSE_WORDS[0])
    if isinstance(caller, Response):
        return caller
    st = portal(request)
    limit = st.settings.smtp_max_message_size
    data = await json_object(request, limit * 4 // 3 + 64 * 1024)
    if isinstance(data, Response):
        return data
    async with st.services.db.session() as s:
        domains = await tenant_domains(s, caller.tenant.id)
    address = _from_address(caller, data.get("from"), domains)
    if isinstance(address, Response):
        return address
    form = _form(data, caller.tenant)
    if isinstance(form, Response):
        return form
    checked = read(form, caller.tenant, st.settings.smtp_max_recipients)
    if checked.errors:
        return error(422, " ".join(f"{k}: {v}" for k, v in sorted(checked.errors.items())))
    uploads = _uploads(data.get("attachments"), limit)
    if isinstance(uploads, Response):
        return uploads
    try:
        if not checked.text.strip() and not uploads:
            return error(422, "text: write a message or attach a file")
        if message_size(checked.text, checked.subject, uploads) > limit:
            return error(413, "with its attachments the message is over the size limit")
        qid = await send_checked(
            st, caller.tenant.id, address, checked, uploads, client_ip(request)
        )
    finally:
        for u in uploads:
            u.file.close()
    async with st.services.db.session() as s:
        await audit(
            s,
            caller.tenant.id,
            caller.actor,
            "sent.composed",
            qid,
            to=len(checked.addresses["to"]),
            cc=len(checked.addresses["cc"]),
            bcc=len(checked.addresses["bcc"]),
            attachments=len(uploads),
        )
        await s.commit()
    return JSONResponse({"id": qid, "state": "received"}, status_code=202, headers=NO_STORE)


_SUMMARY = {
    "type": "object",
    "required": ["id", "mail_from", "state", "received_at"],
    "properties": {
        "id": {"type": "string"},
        "mail_from": {"type": "string"},
        "state": {"type": "string", "enum": ["received", "processed", "failed"]},
        "size": {"type": "integer"},
        "origin": {"type": "string"},
        "received_at": {"type": "number"},
        "processed_at": {"type": ["number", "null"]},
    },
}
_ADDRESSES = {
    "oneOf": [
        {"type": "string", "description": "addresses separated by commas"},
        {"type": "array", "items": {"type": "string", "format": "email"}, "maxItems": 1000},
    ]
}
_COMPOSE = {
    "type": "object",
    "properties": {
        "from": {
            "type": "string",
            "description": "admin keys: an address of the tenant's domains (required); "
            "sender keys: the key's owner (may be left out)",
        },
        "to": _ADDRESSES,
        "cc": _ADDRESSES,
        "bcc": _ADDRESSES,
        "subject": {"type": "string", "maxLength": 900},
        "text": {"type": "string"},
        "attachments": {
            "type": "array",
            "maxItems": MAX_ATTACHMENTS,
            "items": {
                "type": "object",
                "required": ["content_base64"],
                "properties": {
                    "name": {"type": "string"},
                    "content_type": {"type": "string"},
                    "content_base64": {"type": "string", "contentEncoding": "base64"},
                },
            },
        },
        "expires": {
            "type": "string",
            "description": "1d, 7d, 30d, or a date like 2030-01-31; empty: the tenant's usual",
        },
        "receipt": {"type": "boolean", "description": "an opened receipt to the sender"},
        "reply": {"type": "string", "enum": ["none", "sender", "all"]},
        "forward": {"type": "string", "enum": ["yes", "internal", "no"]},
        "passphrase": {
            "type": "string",
            "minLength": 8,
            "maxLength": 200,
            "description": "the recipients need it too, on top of their code; tell them it "
            "another way (never stored in clear, never sent by mail)",
        },
        "passphrase_hint": {"type": "string", "maxLength": 200},
    },
}

PATHS: dict[str, Any] = {
    "/api/v1/messages": {
        "get": {
            "summary": "The tenant's messages, newest first (sender keys: their owner's only)",
            "security": TENANT_KEY,
            "parameters": [
                query_param("sender", {"type": "string", "maxLength": 320}, "only this sender"),
                *PAGING[:1],
                query_param("before", {"type": "string", "maxLength": 40}, "next_before"),
            ],
            "responses": {
                "200": ok(
                    "a page of messages; next_before is null on the last page",
                    {
                        "type": "object",
                        "required": ["messages", "next_before"],
                        "properties": {
                            "messages": {"type": "array", "items": _SUMMARY},
                            "next_before": {"type": ["string", "null"]},
                        },
                    },
                ),
                **errors("422"),
            },
        },
        "post": {
            "summary": "Compose and send a secure message (the same path as /compose)",
            "security": TENANT_KEY,
            "requestBody": json_body(_COMPOSE),
            "responses": {
                "202": ok(
                    "queued: the gateway seals and delivers it; follow it by its id",
                    {
                        "type": "object",
                        "required": ["id", "state"],
                        "properties": {"id": {"type": "string"}, "state": {"type": "string"}},
                    },
                ),
                **errors(
                    "400", ("403", "a compliance key, or a sender key not its owner"), "413", "422"
                ),
            },
        },
    },
}
