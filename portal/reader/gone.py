"""A revoked or expired access: the 410 page that says who sent the message and when, and
"ask the sender for a new copy", from a signed-in session (``POST /messages/{id}/ask``) or
from the notice's link (``POST /m/{token}/ask``, CSRF by the pre-session token of
:mod:`portal.reader.entry`).

Asking mails the sender (``mail/copy_requested.*``) at most once per access per 24 hours:
``copy_requested_at`` is claimed by a conditional UPDATE, so a double click or two tabs
send one mail. The subject is shown only to a verified session, never to a bare link.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from branding.conversation_mail import render_copy_requested
from branding.notifications import format_time
from conversations import events
from core.audit import audit
from core.hashing import sha256_hex
from core.ids import new_token
from core.models import Message, PortalAccess, PortalSession, Tenant, now
from core.portal_links import portal_url_for
from core.portal_message import PortalMessage
from portal.forms import field, read_form
from portal.hosts import foreign_here
from portal.pages import branding_of
from portal.reader.access import accesses_to, is_live, recipient_session, signed_in_context
from portal.reader.people import full_name, name_of, short_name, spoken_date
from portal.reader.receipts import mail_sender
from portal.security import check_session_token, pre_session_token, same_origin_request
from portal.signin.steps import nonce_of, pre_checked, with_nonce
from portal.state import PortalState, portal

ASK_INTERVAL = 86400.0  # one "new copy" mail per access per day
_MAX_TOKEN = 200


def reason_of(access: PortalAccess, msg: Message) -> str | None:
    """``revoked``, ``expired`` or None (the access still opens its message)."""
    if access.revoked:
        return "revoked"
    if msg.portal_expired_at is not None or access.expires_at <= now():
        return "expired"
    return None


async def gone_by_token(s: AsyncSession, token: str) -> tuple[PortalAccess, Message, Tenant] | None:
    """The revoked or expired access behind a notice's link (of a tenant still served)."""
    if not token or len(token) > _MAX_TOKEN:
        return None
    stmt = select(PortalAccess).where(
        PortalAccess.token_hash == sha256_hex(token), PortalAccess.kind == "recipient"
    )
    access = (await s.execute(stmt)).scalars().first()
    if access is None:
        return None
    msg = await s.get(Message, access.message_id)
    tenant = await s.get(Tenant, access.tenant_id)
    if msg is None or tenant is None or tenant.standing == "terminated":
        return None
    return (access, msg, tenant) if reason_of(access, msg) else None


async def _portal_message(st: PortalState, s: AsyncSession, msg: Message) -> PortalMessage | None:
    """What the portal shows of the message, while its sealed copy still exists."""
    if msg.portal_expired_at is not None or not msg.meta_object_id:
        return None  # the sweep destroyed its keys
    return PortalMessage.from_json(
        await st.services.vault.read(s, msg.tenant_id, msg.meta_object_id)
    )


def _sender(pm: PortalMessage | None, msg: Message) -> tuple[str, str]:
    """(the sender's name for a button, the sender in full for a sentence)."""
    value = pm.sender if pm is not None and pm.sender else msg.mail_from
    return short_name(value), full_name(value)


async def gone_page(
    st: PortalState,
    s: AsyncSession,
    access: PortalAccess,
    msg: Message,
    tenant: Tenant,
    *,
    current: PortalSession | None = None,
    nonce: str = "",
    token: str = "",
) -> Response:
    reason = reason_of(access, msg) or "expired"
    pm = await _portal_message(st, s, msg)
    name, sender = _sender(pm, msg)
    sent = spoken_date(pm.date if pm else "", fallback=msg.received_at)
    if reason == "revoked":
        when = format_time(access.revoked_at) if access.revoked_at else ""
        by_sender = access.revoked_by.strip().lower() in ("", msg.mail_from.strip().lower())
        who = sender if by_sender else (tenant.display_name or tenant.name)
        what = f"{who} revoked this message" + (f" on {when}." if when else ".")
    else:
        ended = msg.portal_expired_at if msg.portal_expired_at is not None else access.expires_at
        what = f"This message expired on {format_time(min(ended, access.expires_at))}."
    ctx: dict[str, Any] = (
        await signed_in_context(s, current) if current is not None else branding_of(tenant)
    )
    if current is not None:
        ask_url, csrf = f"/messages/{msg.id}/ask", current.csrf_token
    else:
        ask_url = f"/m/{token}/ask"
        csrf = pre_session_token(st.csrf_key, nonce, access.token_hash)
    asked = access.copy_requested_at
    ctx.update(
        reason=reason,
        what=what,
        sender_name=name,
        sender=sender,
        sent=sent,
        subject=(pm.subject if pm is not None and current is not None else ""),
        ask_url=ask_url,
        csrf=csrf,
        asked_at=format_time(asked) if asked and asked > now() - ASK_INTERVAL else "",
    )
    return st.pages.render("reader/gone.html", ctx, status=410)


async def request_copy(
    st: PortalState, s: AsyncSession, access: PortalAccess, msg: Message, tenant: Tenant
) -> bool:
    """Mail the sender that this recipient would like a new copy, unless this access asked
    within the last 24 hours; True when the mail was queued (the caller commits)."""
    at = now()
    claimed = await s.execute(
        update(PortalAccess)
        .where(
            PortalAccess.id == access.id,
            or_(
                PortalAccess.copy_requested_at.is_(None),
                PortalAccess.copy_requested_at <= at - ASK_INTERVAL,
            ),
        )
        .values(copy_requested_at=at)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1 or not msg.mail_from:  # type: ignore[attr-defined]
        await audit(s, tenant.id, access.recipient, "portal.copy_request.repeated", msg.id)
        return False
    pm = await _portal_message(st, s, msg)
    rendered = render_copy_requested(
        tenant,
        reader=name_of(access.recipient, [*pm.to, *pm.cc] if pm else []),
        subject=pm.subject if pm is not None else "",
        sent_at=msg.received_at,
        sent_link=portal_url_for(st.settings.portal_base_url, tenant.portal_host)
        + f"/sent/{msg.id}",
    )
    item = await mail_sender(st, s, tenant, msg, rendered)
    events.record(
        s,
        tenant.id,
        msg.id,
        events.COPY_REQUESTED,
        access.recipient,
        access.recipient,
        at=at,
        outbox=item.id,
    )
    await audit(s, tenant.id, access.recipient, "portal.copy_requested", msg.id, outbox=item.id)
    return True


async def _asked_page(
    st: PortalState,
    s: AsyncSession,
    access: PortalAccess,
    msg: Message,
    tenant: Tenant,
    queued: bool,
    current: PortalSession | None,
) -> Response:
    pm = await _portal_message(st, s, msg)
    name, _sender_full = _sender(pm, msg)
    ctx = await signed_in_context(s, current) if current is not None else branding_of(tenant)
    await s.refresh(access)
    ctx.update(
        sender_name=name,
        queued=queued,
        asked_at=format_time(access.copy_requested_at or now()),
    )
    return st.pages.render("reader/asked.html", ctx)


async def ask_signed_in(request: Request) -> Response:
    """``POST /messages/{id}/ask`` from a verified session."""
    st = portal(request)
    if not same_origin_request(request, st.origins):
        raise HTTPException(403)
    form = await read_form(request)
    message_id = request.path_params["message_id"]
    async with st.services.db.session() as s:
        current = await recipient_session(s, request)
        if not check_session_token(current.csrf_token, field(form, "csrf")):
            raise HTTPException(403)
        rows = [a for a in await accesses_to(s, current, message_id) if a.kind == "recipient"]
        msg = await s.get(Message, message_id) if rows else None
        tenant = await s.get(Tenant, current.tenant_id)
        if msg is None or tenant is None:
            raise HTTPException(404)
        gone = [a for a in rows if reason_of(a, msg)]
        if not gone or any(is_live(a) and not msg.portal_expired_at for a in rows):
            return RedirectResponse(f"/messages/{msg.id}", status_code=303)
        queued = await request_copy(st, s, gone[0], msg, tenant)
        await s.commit()
        return await _asked_page(st, s, gone[0], msg, tenant, queued, current)


async def ask_by_token(request: Request) -> Response:
    """``POST /m/{token}/ask`` from the notice's link, before any session."""
    token = request.path_params["token"]
    if len(token) > _MAX_TOKEN:
        raise HTTPException(403)
    st, _form, _nonce = await pre_checked(request, sha256_hex(token))
    async with st.services.db.session() as s:
        found = await gone_by_token(s, token)
        if found is None:
            return st.pages.error(404)
        access, msg, tenant = found
        queued = await request_copy(st, s, access, msg, tenant)
        await s.commit()
        return await _asked_page(st, s, access, msg, tenant, queued, None)


async def show_by_token(request: Request, s: AsyncSession, token: str) -> Response | None:
    """The 410 page for a notice's link whose access was revoked or has expired, else None."""
    st = portal(request)
    found = await gone_by_token(s, token)
    if found is None or await foreign_here(s, request, found[2].id):
        return None
    access, msg, tenant = found
    nonce = nonce_of(request) or new_token(24)
    response = await gone_page(st, s, access, msg, tenant, nonce=nonce, token=token)
    return with_nonce(request, response, nonce)
