"""``/api/v1/policy/dry-run``: what the tenant's policy would do with a given message (the
Outlook add-in warns a sender with it before sending)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from email.message import EmailMessage
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core.accounts.domains import tenant_domains
from core.models import Tenant
from core.policy import Limits, PolicyError, evaluate, extract_facts
from core.policy.disposition import disposition_for, upgraded_by_trigger
from core.policy.store import get_stored
from core.recipient_keys import methods_available
from portal.api.common import AUTH_RESPONSES, bounded_body, error, tenant_of_key
from portal.state import portal

MAX_MESSAGE = 25 * 1024 * 1024
MAX_RECIPIENTS = 1000
_YES = ("yes", "true", "1", "on")


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


def _trigger(facts: Any, tenant: Tenant, keywords: tuple[str, ...]) -> str | None:
    """The built-in triggers of SPEC §3, as the gateway's ``triggers`` judges them."""
    lowered = facts.subject.lower()
    for keyword in keywords:
        if keyword.lower() in lowered:
            return f"subject keyword {keyword}"
    if any(v.strip().lower() in _YES for v in facts.header_values("x-sealmail-encrypt")):
        return "header X-Sealmail-Encrypt"
    if tenant.sensitivity_trigger and any(
        v.strip().lower() == "company-confidential" for v in facts.header_values("sensitivity")
    ):
        return "header Sensitivity: Company-Confidential"
    return None


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
        domains = await tenant_domains(s, tenant.id)

        def run() -> tuple[Any, list[Any]]:
            facts = extract_facts(raw, Limits())
            return facts, evaluate(
                stored.policy,
                facts,
                mail_from=mail_from,
                recipients=recipients,
                tenant_domains=domains,
            )

        facts, decisions = await asyncio.to_thread(run)
        trigger = _trigger(facts, tenant, state.settings.trigger_keywords)
        out = []
        for d in decisions:
            action, method = d.action, d.method
            explanation = dict(d.explanation)
            if trigger and upgraded_by_trigger(action):
                explanation.update(trigger=trigger, upgraded_from=action)
                action, method = "encrypt", "auto"
            methods: set[str] = set()
            if action == "encrypt" and method == "auto":
                methods = await methods_available(s, tenant.id, d.rcpt)
            out.append(
                {
                    "address": d.rcpt,
                    "action": action,
                    "method": method,
                    "disposition": disposition_for(action, method, methods),
                    "rule": d.rule,
                    "explanation": explanation,
                }
            )
    return JSONResponse(
        {"policy_version": stored.version, "recipients": out},
        headers={"Cache-Control": "no-store"},
    )


PATHS: dict[str, Any] = {
    "/api/v1/policy/dry-run": {
        "post": {
            "summary": "What the policy would do with a message, per recipient, and why",
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
                    "message/rfc822": {},
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
                "200": {
                    "description": "{policy_version, recipients: [{address, action, "
                    "method, disposition, rule, explanation}]}"
                },
                "400": {"description": "malformed request"},
                "413": {"description": "message too large"},
                **AUTH_RESPONSES,
            },
        }
    },
}
