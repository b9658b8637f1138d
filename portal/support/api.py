"""The support desk's JSON API: ``POST /api/v1/support/verify`` with a desk agent's key as
bearer token (not a tenant API key), and its OpenAPI path (:data:`SUPPORT_PATHS`)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core import attempts
from core.addresses import valid_or_empty
from portal import ratelimit
from portal.api.spec import errors, json_body, ok
from portal.state import client_ip, portal
from portal.support.common import AGENT_LOGIN_FAILURES, mailer
from support import agents, notify, pins


def _api_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def api_verify(request: Request) -> Response:
    """``{"email", "pin"[, "account"]}`` with a desk agent's key as bearer token: the same
    check as ``/support`` (recorded, audited, counted towards the lock), as JSON."""
    st = portal(request)
    ip = client_ip(request)
    bucket = f"support-api-fail-ip:{ip}"
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip() or len(key) > 200:
        return _api_error(401, "missing bearer agent key", {"WWW-Authenticate": "Bearer"})
    # the try is counted before the key is checked, so parallel tries cannot pass the limit
    if not await attempts.claim(st.services.db, [(bucket, AGENT_LOGIN_FAILURES)], ratelimit.HOUR):
        return _api_error(429, "too many failed attempts", {"Retry-After": "3600"})
    async with st.services.db.session() as s:
        agent = await agents.agent_by_bearer(s, key)
        if agent is None:
            return _api_error(401, "invalid agent key", {"WWW-Authenticate": "Bearer"})
        await attempts.give_back(st.services.db, [bucket])
        try:
            body = await request.json()
        except (ValueError, RecursionError):  # RecursionError: nested too deep
            return _api_error(400, "the body must be a JSON object")
        if not isinstance(body, dict):
            return _api_error(400, "the body must be a JSON object")
        email, pin, account = body.get("email"), body.get("pin"), body.get("account")
        if not isinstance(email, str) or not valid_or_empty(email):
            return _api_error(400, "email: an email address is required")
        if not isinstance(pin, str) or not pin.strip() or len(pin) > 40:
            return _api_error(400, "pin: a string is required")
        if account is not None and not isinstance(account, str):
            return _api_error(400, "account: a string (billing account id) or absent")
        result = await pins.check_pin(
            s, pins.email_key(st.services.root_key), valid_or_empty(email), pin,
            agent=agent.email, scope=agents.scope_of(agent), account_id=account or None,
        )  # fmt: skip
        await notify.notify_locked(s, mailer(st), result.locked_now)
        await s.commit()
    return JSONResponse(result.as_dict())


_ACTION = {
    "type": "object",
    "properties": {
        "action": {"type": "string"},
        "allowed": {"type": "boolean"},
        "why": {"type": "string"},
    },
}
_RESULT = {
    "type": "object",
    "required": ["email", "result", "match"],
    "properties": {
        "email": {"type": "string"},
        "result": {
            "type": "string",
            "enum": ["match", "no_match", "locked", "no_pin", "no_contact"],
        },
        "match": {"type": "boolean"},
        "account": {"type": ["string", "null"]},
        "account_id": {"type": ["string", "null"]},
        "standing": {"type": ["string", "null"]},
        "delinquent": {"type": ["boolean", "null"]},
        "locked_now": {"type": "boolean"},
        "failures_left": {"type": ["integer", "null"]},
        "actions": {"type": "array", "items": _ACTION},
    },
}

SUPPORT_PATHS: dict[str, Any] = {
    "/api/v1/support/verify": {
        "post": {
            "summary": "The support desk's PIN check (bearer: a desk agent's key, not a tenant "
            "API key): body {email, pin, account?}; answers result (match, no_match, locked, "
            "no_pin, no_contact), the account and its standing, and each action allowed or "
            "refused. Counts towards the lock and is audited like /support.",
            "security": [{"supportDeskKey": []}],
            "requestBody": json_body(
                {
                    "type": "object",
                    "required": ["email", "pin"],
                    "properties": {
                        "email": {"type": "string", "format": "email"},
                        "pin": {"type": "string", "maxLength": 40},
                        "account": {"type": "string", "description": "a billing account id"},
                    },
                }
            ),
            "responses": {
                "200": ok("the check's result", _RESULT),
                **errors(
                    ("400", "a missing or malformed field"),
                    ("429", "too many invalid keys from this address"),
                ),
            },
        }
    }
}
