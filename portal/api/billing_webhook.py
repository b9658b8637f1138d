"""The billing system's signed webhook at ``/billing/webhook`` (issue 6, SPEC §7, handled by
:mod:`billing_hooks`).

The webhook's signature is checked on the raw bytes before anything parses them; an unset
``billing_webhook_secret`` refuses every delivery (503) rather than accepting unsigned ones.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from billing_hooks import events
from billing_hooks.signing import HEADER, SignatureError, verify
from branding.billing_mail import billing_mailer
from core.errors import TransientError
from portal.api.common import error
from portal.api.spec import ERROR, json_body, ok
from portal.state import portal

log = logging.getLogger("sealmail.billing")
MAX_BODY = events.MAX_BODY


async def _read_body(request: Request) -> bytes | None:
    """The raw body, or None when it is larger than :data:`MAX_BODY`."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def webhook(request: Request) -> Response:
    st = portal(request)
    secret = st.settings.billing_webhook_secret.reveal()
    if not secret:
        return error(503, "billing webhooks are not configured (billing_webhook_secret)")
    body = await _read_body(request)
    if body is None:
        return error(413, f"body larger than {MAX_BODY} bytes")
    try:
        verify(request.headers.get(HEADER), body, secret)
    except SignatureError as err:
        log.warning("billing webhook refused: %s", err)
        return error(401, str(err))
    try:
        result = await events.handle(
            st.services.db, st.settings, body, mailer=billing_mailer(st.services)
        )
    except TransientError:
        log.warning("billing webhook: database unavailable, the sender will retry")
        return JSONResponse(
            {"error": "temporarily unavailable, retry later"},
            status_code=503,
            headers={"Retry-After": "30"},
        )
    return JSONResponse(result.body, status_code=result.status)


PATHS: dict[str, Any] = {
    "/billing/webhook": {
        "post": {
            "summary": "The billing system's events (SPEC §7); not for tenants: signed with "
            "the shared billing_webhook_secret in the signature header, no API key",
            "security": [],
            "parameters": [
                {"name": HEADER, "in": "header", "required": False, "schema": {"type": "string"}}
            ],
            "requestBody": json_body({"type": "object"}),
            "responses": {
                "200": ok("handled (or a duplicate, answered the same)", {"type": "object"}),
                "202": ok("accepted", {"type": "object"}),
                "400": {"description": "not a known event", "content": ERROR},
                "401": {"description": "bad or missing signature", "content": ERROR},
                "404": {"description": "no such tenant", "content": ERROR},
                "413": {"description": "too large", "content": ERROR},
                "422": {"description": "a field is not valid", "content": ERROR},
                "503": {"description": "not configured, or the database is away", "content": ERROR},
            },
        }
    }
}
