"""``/api/v1/policy/dry-run``: what the tenant's policy would do with a given message (the
Outlook add-in warns a sender with it before sending)."""

from __future__ import annotations

import base64
import binascii
import json
from email.message import EmailMessage
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core.policy import PolicyError
from core.policy.store import get_stored
from portal.api.common import bounded_body, error, tenant_of_key
from portal.api.spec import TENANT_KEY, errors, ok
from portal.policy_trial import try_policy
from portal.state import portal

MAX_MESSAGE = 25 * 1024 * 1024
MAX_RECIPIENTS = 1000


def _message_from_json(data: Any) -> tuple[bytes, str, list[str]]:
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    mail_from = data.get("mail_from")
    recipients = data.get("recipients")
    if not isinstance(mail_from, str) or not isinstance(recipients, list):
        raise ValueError("mail_from (text) and recipients (list) are required")
    msg = EmailMessage()
    msg["From"] = mail_from
    msg["Subject"] = str(data.get("subject", ""))
    headers = data.get("headers") or {}
    if not isinstance(headers, dict):
        raise ValueError("headers must be an object")
    for name, value in headers.items():
        msg[str(name)] = str(value)
    msg.set_content(str(data.get("body", "")))
    if data.get("html"):
        msg.add_alternative(str(data["html"]), subtype="html")
    for i, att in enumerate(data.get("attachments") or []):
        if not isinstance(att, dict) or not isinstance(att.get("content_base64"), str):
            raise ValueError(f"attachments[{i}]: filename and content_base64 are required")
        try:
            content = base64.b64decode(att["content_base64"], validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"attachments[{i}].content_base64: not base64") from None
        ctype = str(att.get("content_type") or "application/octet-stream")
        maintype, _, subtype = ctype.partition("/")
        msg.add_attachment(
            content,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=str(att.get("filename") or f"attachment-{i}"),
        )
    return msg.as_bytes(), mail_from, [str(r) for r in recipients]


async def dry_run(request: Request) -> Response:
    found = await tenant_of_key(request)
    if isinstance(found, Response):
        return found
    tenant, _role = found
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await bounded_body(request, MAX_MESSAGE)
    if body is None:
        return error(413, f"a message is at most {MAX_MESSAGE} bytes for a dry run")
    try:
        if ctype == "message/rfc822":
            raw = body
            mail_from = request.query_params.get("mail_from", "")
            recipients = request.query_params.getlist("rcpt")
        elif ctype == "application/json":
            raw, mail_from, recipients = _message_from_json(json.loads(body or b"null"))
        else:
            return error(415, "send message/rfc822 or application/json")
    except (ValueError, UnicodeDecodeError) as exc:
        return error(400, str(exc).splitlines()[0] if str(exc) else "bad request")
    if not recipients or len(recipients) > MAX_RECIPIENTS:
        return error(400, f"name 1 to {MAX_RECIPIENTS} recipients")
    state = portal(request)
    async with state.services.db.session() as s:
        try:
            stored = await get_stored(s, tenant.id)
        except PolicyError as exc:
            return error(500, f"the stored policy is invalid: {exc}")
        out = await try_policy(
            s,
            tenant,
            stored.policy,
            raw,
            mail_from=mail_from,
            recipients=recipients,
            keywords=state.settings.trigger_keywords,
        )
    return JSONResponse(
        {"policy_version": stored.version, "recipients": out},
        headers={"Cache-Control": "no-store"},
    )


PATHS: dict[str, Any] = {
    "/api/v1/policy/dry-run": {
        "post": {
            "summary": "What the policy would do with a message, per recipient, and why",
            "security": TENANT_KEY,
            "parameters": [
                {"name": "mail_from", "in": "query", "schema": {"type": "string"}},
                {
                    "name": "rcpt",
                    "in": "query",
                    "schema": {"type": "array", "items": {"type": "string"}},
                    "explode": True,
                },
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "message/rfc822": {"schema": {"type": "string", "format": "binary"}},
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["mail_from", "recipients"],
                            "properties": {
                                "mail_from": {"type": "string"},
                                "recipients": {"type": "array", "items": {"type": "string"}},
                                "subject": {"type": "string"},
                                "body": {"type": "string"},
                                "html": {"type": "string"},
                                "headers": {"type": "object"},
                                "attachments": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "filename": {"type": "string"},
                                            "content_type": {"type": "string"},
                                            "content_base64": {"type": "string"},
                                        },
                                    },
                                },
                            },
                        }
                    },
                },
            },
            "responses": {
                "200": ok(
                    "the policy's decision for each recipient",
                    {
                        "type": "object",
                        "required": ["recipients"],
                        "properties": {
                            "policy_version": {"type": "integer"},
                            "recipients": {"type": "array", "items": {"type": "object"}},
                        },
                    },
                ),
                **errors(("400", "malformed request"), ("413", "message too large"), "415"),
            },
        }
    },
}
