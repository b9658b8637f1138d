"""One more step before a guarded message opens (issue 16): the page every content route
of a locked message answers (:class:`portal.reader.access.Locked`), and ``POST
/messages/{id}/unlock`` that checks the sender's passphrase.

The passphrase is checked against its Argon2 hash only; five wrong tries per message and
address an hour (and thirty per IP) stop further tries for that hour. A right one is kept
in the session (``PortalSession.unlocked``), recorded as the message's ``unlocked`` event
(and so in the evidence log) and audited. Step-up without a passphrase is passed with a
passkey: the page offers to confirm with one (``/account/passkey/confirm``), or to add one
on this device when the person has none yet; either makes the session's factor ``passkey``
(:mod:`portal.account.ceremonies`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from conversations import events, guards
from conversations.models import MessageGuard
from core.audit import audit
from core.hashing import sha256_hex
from core.models import Message, PortalSession
from portal import ratelimit
from portal.forms import field, read_form
from portal.reader.access import Locked, accesses_to, is_live, recipient_session, signed_in_context
from portal.reader.people import full_name
from portal.security import check_session_token, same_origin_request
from portal.signin import passkeys
from portal.state import PortalState, client_ip, portal

FAILURES_PER_MESSAGE = 5  # an hour, per message and address
FAILURES_PER_IP = 30


def _buckets(current: PortalSession, message_id: str, ip: str) -> list[tuple[str, int]]:
    who = sha256_hex(f"{current.tenant_id}\0{current.email}\0{message_id}")
    return [
        (f"passphrase-fail:{who}", FAILURES_PER_MESSAGE),
        (f"passphrase-fail-ip:{ip}", FAILURES_PER_IP),
    ]


async def _context(
    st: PortalState,
    s: AsyncSession,
    request: Request,
    current: PortalSession,
    guard: MessageGuard,
) -> dict[str, Any]:
    msg = await s.get(Message, guard.message_id)
    needs = guards.missing(guard, current)
    rp_id = passkeys.relying_party(request).rp_id
    ctx = await signed_in_context(s, current)
    ctx.update(
        message_id=guard.message_id,
        sender=full_name(msg.mail_from) if msg is not None else "the sender",
        needs_passphrase="passphrase" in needs,
        needs_passkey="passkey" in needs and "passphrase" not in needs,
        has_passphrase=bool(guard.passphrase_hash),
        hint=guard.passphrase_hint,
        reason=guard.step_up_reason,
        step_up=guard.step_up,
        factor=current.factor,
        has_passkey=await passkeys.has_passkey(s, current.tenant_id, current.email, rp_id),
        error="",
    )
    return ctx


async def locked_page(request: Request, exc: Locked) -> Response:
    """The page a locked message's routes answer (403): what is missing and how to give it."""
    st = portal(request)
    async with st.services.db.session() as s:
        current = await recipient_session(s, request)
        guard = await guards.guard_of(s, current.tenant_id, exc.message_id)
        if guard is None:  # unlocked meanwhile
            raise HTTPException(404)
        ctx = await _context(st, s, request, current, guard)
    return st.pages.render("reader/unlock.html", ctx, status=403)


async def unlock(request: Request) -> Response:
    """``POST /messages/{id}/unlock``: the passphrase typed by the signed-in recipient."""
    st = portal(request)
    if not same_origin_request(request, st.origins):
        raise HTTPException(403)
    message_id: str = request.path_params["message_id"]
    form = await read_form(request)
    ip = client_ip(request)
    async with st.services.db.session() as s:
        current = await recipient_session(s, request)
        if not check_session_token(current.csrf_token, field(form, "csrf")):
            raise HTTPException(403)
        live = [
            a
            for a in await accesses_to(s, current, message_id)
            if is_live(a) and a.kind == "recipient"
        ]
        guard = await guards.guard_of(s, current.tenant_id, message_id)
        if not live or guard is None:
            raise HTTPException(404)
        if not guard.passphrase_hash or "passphrase" not in guards.missing(guard, current):
            return RedirectResponse(f"/messages/{message_id}", status_code=303)
        buckets = _buckets(current, message_id, ip)
        if await ratelimit.exceeded(s, buckets, ratelimit.HOUR):
            ctx = await _context(st, s, request, current, guard)
            ctx["error"] = (
                "There were too many wrong tries. Wait an hour, or ask the sender to check "
                "the passphrase they gave you."
            )
            return st.pages.render("reader/unlock.html", ctx, status=429)
        typed = field(form, "passphrase")
        if await guards.try_passphrase(guard, typed):
            guards.mark_unlocked(current, message_id)
            events.record(
                s,
                current.tenant_id,
                message_id,
                events.UNLOCKED,
                live[0].recipient,
                how="passphrase",
            )
            await audit(
                s, current.tenant_id, current.email, "portal.passphrase.given", message_id, ip=ip
            )
            await s.commit()
            return RedirectResponse(f"/messages/{message_id}", status_code=303)
        await ratelimit.record(s, [b for b, _ in buckets], ratelimit.HOUR)
        await audit(
            s, current.tenant_id, current.email, "portal.passphrase.failed", message_id, ip=ip
        )
        await s.commit()
        ctx = await _context(st, s, request, current, guard)
    ctx["error"] = "That passphrase is not right. Check it with the sender and try again."
    return st.pages.render("reader/unlock.html", ctx, status=400)
