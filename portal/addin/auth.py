"""Who is using the add-in: a sender proves their address once, inside the task pane, with
a code mailed to it, and gets a user-scoped token for the send-time check. Never the
tenant's admin API key: a stolen add-in token reveals one user's policy answers, nothing
more, and the tenant's admins can still see each token's last use.

- ``POST /addin/api/code`` ``{email}``: the same rules as ``/sent`` (an address of one of the
  tenant's domains, or a listed user; only listed users when ``sent_users == "listed"``),
  the same rate limits and the same answer for every address: ``{"pending": <secret>}``.
  The code goes by mail (:func:`portal.signin.steps.mail_code`); the pending secret stays in
  the task pane, since an iframe inside Outlook cannot count on its cookies.
- ``POST /addin/api/token`` ``{pending, code}``: the code checked by the one code check
  (:mod:`portal.signin.codes`, 5 tries, 10 minutes, single use); right, a new token
  ``{"token", "email", "expires_at"}``, stored as its SHA-256 in ``addin_tokens`` for
  :data:`TOKEN_LIFETIME`.
- :func:`token_user`: the bearer token of a request, checked (not expired, not revoked, the
  address still allowed, the request not on another tenant's host); ``last_used_at`` noted.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

from sqlalchemy import update
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core.addresses import normalize, problem
from core.audit import audit
from core.hashing import sha256_hex
from core.ids import new_token
from core.models import Tenant, now
from portal.addin.tenancy import manifest_tenant
from portal.admin.doors import SENDER_DOOR
from portal.api.common import bounded_body, error
from portal.hosts import foreign_here
from portal.models import AddinToken
from portal.security import same_origin_request
from portal.sent.senders import sender_for, sender_of_subject
from portal.signin import codes
from portal.signin.by_address import AddressDoor, pending_of, start
from portal.signin.codes import mask_address, minutes
from portal.signin.steps import TOO_MANY, count, limited, mail_code
from portal.state import PortalState, client_ip, portal

log = logging.getLogger("sealmail.portal.addin")

DOOR = AddressDoor("addin", "addin-code", "", "/addin/taskpane.html")
TOKEN_LIFETIME = 90 * 86400.0
MAX_REQUEST = 4096
_NOTE_EVERY = 60.0  # last_used_at is written at most once a minute per token


@dataclasses.dataclass(frozen=True)
class AddinUser:
    tenant: Tenant
    email: str
    token_hash: str


async def _json(request: Request) -> dict[str, Any] | Response:
    st = portal(request)
    if not same_origin_request(request, st.origins):
        return error(403, "requests come from the add-in's own pages")
    body = await bounded_body(request, MAX_REQUEST)
    if body is None:
        return error(413, "request too large")
    try:
        data = json.loads(body or b"null")
    except ValueError:
        return error(400, "send a JSON object")
    if not isinstance(data, dict):
        return error(400, "send a JSON object")
    return data


async def send_code(request: Request) -> Response:
    """``POST /addin/api/code``."""
    data = await _json(request)
    if isinstance(data, Response):
        return data
    st = portal(request)
    email = normalize(str(data.get("email") or ""))
    if problem(email) is not None:
        return error(400, "Enter your email address.")
    ip = client_ip(request)
    buckets = DOOR.send_limits(email, ip)
    async with st.services.db.session() as s:
        if await limited(s, buckets):
            return error(429, "Too many codes asked for; try again in an hour.", TOO_MANY)
        sender = await sender_for(s, email, SENDER_DOOR.roles)
        if sender is not None and await foreign_here(s, request, sender.tenant.id):
            sender = None  # another tenant's own portal host: not this address's portal
        subject = sender.subject if sender is not None else ""
        secret, code = await start(s, request, DOOR, st.code_key, subject)
        if sender is not None:
            await mail_code(st, s, sender.tenant, sender.user.email, code)
            await audit(
                s,
                sender.tenant.id,
                sender.user.email,
                "addin.code.sent",
                sender.user.id or sender.user.email,
                ip=ip,
                listed=sender.listed,
            )
        else:
            log.info("add-in sign-in asked for an address that may not sign in")
        await count(s, buckets)
        await s.commit()
    return JSONResponse(
        {
            "pending": secret,
            "says": f"If {mask_address(email)} may use secure mail, a code is on its way. "
            f"It works for {minutes()} minutes.",
        },
        headers={"Cache-Control": "no-store"},
    )


class _PendingRequest:
    """What :func:`pending_of` reads from a browser's cookie, taken from the JSON body."""

    def __init__(self, secret: str) -> None:
        self.cookies = {DOOR.pending_cookie: secret}


async def issue_token(request: Request) -> Response:
    """``POST /addin/api/token``."""
    data = await _json(request)
    if isinstance(data, Response):
        return data
    st = portal(request)
    ip = client_ip(request)
    found = pending_of(_PendingRequest(str(data.get("pending") or "")), DOOR, ip)  # type: ignore[arg-type]
    if found is None:
        return error(400, "Ask for a code first.")
    pending, buckets = found
    async with st.services.db.session() as s:
        if await limited(s, buckets):
            return error(429, "Too many wrong codes; try again in an hour.", TOO_MANY)
        held = await pending.newest(s)
        if held is None:
            return error(400, "That code has expired; ask for a new one.")
        sender = await sender_of_subject(s, held.subject, SENDER_DOOR.roles)
        if sender is not None and await foreign_here(s, request, sender.tenant.id):
            sender = None
        outcome = await codes.check(
            s, st.code_key, pending, held, str(data.get("code") or ""), allowed=sender is not None
        )
        if outcome.ok and sender is not None:
            token = new_token(32)
            expires = now() + TOKEN_LIFETIME
            s.add(
                AddinToken(
                    token_hash=sha256_hex(token),
                    tenant_id=sender.tenant.id,
                    email=sender.user.email,
                    expires_at=expires,
                )
            )
            await audit(
                s,
                sender.tenant.id,
                sender.user.email,
                "addin.token.issued",
                sender.user.id or sender.user.email,
                ip=ip,
                listed=sender.listed,
            )
            await s.commit()
            return JSONResponse(
                {"token": token, "email": sender.user.email, "expires_at": expires},
                headers={"Cache-Control": "no-store"},
            )
        await count(s, buckets)
        if sender is not None:
            await audit(
                s,
                sender.tenant.id,
                sender.user.email,
                "addin.code.failed",
                sender.user.id or sender.user.email,
                ip=ip,
                reason=outcome.reason,
            )
        await s.commit()
    return error(
        400, "That code is not right, or it has expired. Check the mail, or ask for a new one."
    )


def unauthorized(message: str) -> Response:
    return error(401, message, {"WWW-Authenticate": 'Bearer realm="sealmail add-in"'})


async def token_user(request: Request, st: PortalState) -> AddinUser | Response:
    """The add-in user of the request's bearer token, or the 401 to answer."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 200:
        return unauthorized("sign in to the add-in first")
    token_hash = sha256_hex(token)
    async with st.services.db.session() as s:
        row = await s.get(AddinToken, token_hash)
        if row is None or row.revoked_at is not None or row.expires_at <= now():
            return unauthorized("this sign-in is not valid any more; sign in again")
        sender = await sender_for(s, row.email, SENDER_DOOR.roles)
        if sender is None or sender.tenant.id != row.tenant_id:
            return unauthorized("this address may not use secure mail any more")
        if await foreign_here(s, request, row.tenant_id):
            return unauthorized("this sign-in is for another tenant's portal")
        here = await manifest_tenant(request) if request.query_params.get("tenant") else None
        if request.query_params.get("tenant") and (here is None or here.id != row.tenant_id):
            return unauthorized("this sign-in is for another tenant")
        if row.last_used_at is None or row.last_used_at < now() - _NOTE_EVERY:
            await s.execute(
                update(AddinToken)
                .where(AddinToken.token_hash == token_hash)
                .values(last_used_at=now())
            )
            await s.commit()
        return AddinUser(sender.tenant, row.email, token_hash)
