"""``POST /addin/api/check``: what the tenant's policy would do with the draft being sent,
asked by the add-in's ``OnMessageSend`` handler with the sender's add-in token (never an
API key). The draft comes as ``{to, cc, bcc, subject, body, attachments: [{name, size}],
marked}``; it is made into a message from the token's user and run through the one dry run
(:func:`portal.policy_trial.try_policy`), so the answer is the one the gateway would give.

The answer sums up the strictest outcome over all recipients — ``reject`` over ``hold`` over
``encrypt`` over ``require_tls`` over ``pass`` — with the rule that decided it, a sentence for
the sender, and the tenant's ``addin_on_send`` (off | warn | offer | block) telling the
add-in what to do about it. Attachments are named only (the add-in does not upload their
content): detectors that read content see the subject and body."""

from __future__ import annotations

import json
from email.message import EmailMessage
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core.addresses import normalize, problem
from core.policy import PolicyError
from core.policy.store import get_stored
from portal.addin.auth import token_user
from portal.api.common import bounded_body, error
from portal.policy_trial import try_policy
from portal.state import portal

MAX_DRAFT = 2 * 1024 * 1024
MAX_RECIPIENTS = 500
MAX_ATTACHMENTS = 100
_STRICTNESS = ("pass", "require_tls", "encrypt", "hold", "reject")


def _addresses(value: Any) -> list[str]:
    """Addresses as text, or Office.js ``EmailAddressDetails`` objects."""
    if not isinstance(value, list):
        return []
    out = []
    for item in value:
        text = item.get("emailAddress", "") if isinstance(item, dict) else item
        address = normalize(str(text or ""))
        if address and problem(address) is None:
            out.append(address)
    return out


def draft_message(data: dict[str, Any], sender: str) -> tuple[bytes, list[str]]:
    """The draft as a message from ``sender``, and its recipients (To, Cc and Bcc)."""
    to, cc, bcc = (_addresses(data.get(k)) for k in ("to", "cc", "bcc"))
    recipients = list(dict.fromkeys(to + cc + bcc))
    if not recipients or len(recipients) > MAX_RECIPIENTS:
        raise ValueError(f"name 1 to {MAX_RECIPIENTS} recipients")
    msg = EmailMessage()
    msg["From"] = sender
    if to:
        msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Subject"] = str(data.get("subject") or "").replace("\r", " ").replace("\n", " ")
    if data.get("marked") is True:
        msg["X-Sealmail-Encrypt"] = "yes"
    msg.set_content(str(data.get("body") or ""))
    attachments = data.get("attachments") or []
    if not isinstance(attachments, list) or len(attachments) > MAX_ATTACHMENTS:
        raise ValueError(f"attachments: a list of at most {MAX_ATTACHMENTS}")
    for i, att in enumerate(attachments):
        name = str(att.get("name") or "") if isinstance(att, dict) else ""
        msg.add_attachment(
            b"",
            maintype="application",
            subtype="octet-stream",
            filename=name.replace("\r", " ").replace("\n", " ")[:255] or f"attachment-{i}",
        )
    return msg.as_bytes(), recipients


def _says(action: str, rule: str | None, trigger: str | None) -> str:
    why = f" under the rule '{rule}'" if rule else (f" because of the {trigger}" if trigger else "")
    return {
        "encrypt": f"This message will be sent securely{why}: recipients read it in the "
        "secure portal or decrypt it with their own key.",
        "require_tls": f"This message may only travel over an encrypted connection{why}.",
        "hold": f"This message will be held for review{why} before it goes out.",
        "reject": f"This message will be refused{why}; it will not be delivered.",
    }.get(action, "Nothing in this message needs protecting.")


def summary(decisions: list[dict[str, Any]]) -> dict[str, Any]:
    """The strictest decision over all recipients, and which ones it concerns."""
    top = max(decisions, key=lambda d: _STRICTNESS.index(d["action"]))
    trigger = top["explanation"].get("trigger")
    return {
        "action": top["action"],
        "rule": top["rule"],
        "says": _says(top["action"], top["rule"], trigger),
        "recipients": [
            {"address": d["address"], "action": d["action"], "rule": d["rule"]} for d in decisions
        ],
    }


async def check(request: Request) -> Response:
    """``POST /addin/api/check``."""
    st = portal(request)
    user = await token_user(request, st)
    if isinstance(user, Response):
        return user
    body = await bounded_body(request, MAX_DRAFT)
    if body is None:
        return error(413, f"a draft is at most {MAX_DRAFT} bytes for the check")
    try:
        data = json.loads(body or b"null")
        if not isinstance(data, dict):
            raise ValueError("send a JSON object")
        raw, recipients = draft_message(data, user.email)
    except (ValueError, UnicodeDecodeError) as exc:
        return error(400, str(exc).splitlines()[0] if str(exc) else "bad request")
    async with st.services.db.session() as s:
        try:
            stored = await get_stored(s, user.tenant.id)
        except PolicyError as exc:
            return error(500, f"the stored policy is invalid: {exc}")
        decisions = await try_policy(
            s,
            user.tenant,
            stored.policy,
            raw,
            mail_from=user.email,
            recipients=recipients,
            keywords=st.settings.trigger_keywords,
        )
    return JSONResponse(
        {
            **summary(decisions),
            "on_send": user.tenant.addin_on_send,
            "marked": data.get("marked") is True,
            "policy_version": stored.version,
        },
        headers={"Cache-Control": "no-store"},
    )
