"""Encrypted PDFs for a signed-in recipient (issue 16, method ``pdf``): ``/pdf-password``,
where they choose (or change) the password their PDFs from this tenant open with, and
``POST /messages/{id}/pdf``, "Send me this message as a PDF", which queues the same mail
the pipeline sends (:mod:`branding.pdf_mail`) through the outbox. The password is kept by
:mod:`conversations.pdf_passwords`; no page shows it and no mail carries it."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from branding import references
from branding.brands import resolve
from branding.pdf_mail import pdf_notice
from conversations import events
from conversations.models import PdfPassword
from conversations.pdf_passwords import (
    MIN_LENGTH,
    has_password,
    pdf_password_for,
    set_password,
    weakness,
)
from conversations.protection import settings_of
from core import outbox
from core.audit import audit
from core.models import MessageRecipient, PortalSession, Tenant
from core.portal_links import portal_url_for
from portal.forms import field, read_form
from portal.reader.access import load_with_access, recipient_session, signed_in_context
from portal.security import check_session_token, same_origin_request
from portal.state import PortalState, portal

_MESSAGE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _message_param(value: str) -> str:
    return value if _MESSAGE_ID.fullmatch(value or "") else ""


async def pdf_offer(s: AsyncSession, current: PortalSession, message_id: str) -> str:
    """What the message page offers about PDFs: ``ready`` (the recipient has a password:
    "Send me this message as a PDF"), ``choose`` (this tenant sends them PDFs: a link to
    choose one), or "" (nothing: the tenant does not use PDFs for them)."""
    if await has_password(s, current.tenant_id, current.email):
        return "ready"
    if (await settings_of(s, current.tenant_id)).pdf_when_no_key:
        return "choose"
    sent_as_pdf = await s.execute(
        select(MessageRecipient.id)
        .where(
            MessageRecipient.message_id == message_id,
            func.lower(MessageRecipient.rcpt) == current.email,
            MessageRecipient.disposition == "pdf",
        )
        .limit(1)
    )
    return "choose" if sent_as_pdf.first() is not None else ""


async def _page(
    st: PortalState,
    s: AsyncSession,
    current: PortalSession,
    message_id: str,
    *,
    error: str = "",
    status: int = 200,
    saved: bool = False,
) -> Response:
    row = await s.get(PdfPassword, (current.tenant_id, current.email))
    ctx = await signed_in_context(s, current)
    ctx.update(
        has_password=row is not None,
        message_id=message_id,
        min_length=MIN_LENGTH,
        error=error,
        saved=saved,
    )
    return st.pages.render("reader/pdf_password.html", ctx, status=status)


async def password_page(request: Request) -> Response:
    """``GET /pdf-password`` (``?m=`` the message to go back to)."""
    st = portal(request)
    async with st.services.db.session() as s:
        current = await recipient_session(s, request)
        response = await _page(
            st,
            s,
            current,
            _message_param(request.query_params.get("m", "")),
            saved=request.query_params.get("done") == "saved",
        )
        await s.commit()
    return response


async def password_save(request: Request) -> Response:
    """``POST /pdf-password``: check, keep (sealed), audit; back to the message if any."""
    st = portal(request)
    if not same_origin_request(request, st.origins):
        raise HTTPException(403)
    form = await read_form(request)
    message_id = _message_param(field(form, "m"))
    async with st.services.db.session() as s:
        current = await recipient_session(s, request)
        if not check_session_token(current.csrf_token, field(form, "csrf")):
            raise HTTPException(403)
        password = str(form.get("password") or "")
        again = str(form.get("again") or "")
        error = weakness(password, current.email)
        if not error and password != again:
            error = "The two passwords are not the same. Please type it twice."
        if error:
            return await _page(st, s, current, message_id, error=error, status=400)
        await set_password(s, st.services.vault, current.tenant_id, current.email, password)
        await audit(s, current.tenant_id, current.email, "portal.pdf_password.set", "")
        await s.commit()
    if message_id:
        return RedirectResponse(f"/messages/{message_id}?notice=pdf_password", status_code=303)
    return RedirectResponse("/pdf-password?done=saved", status_code=303)


async def send_pdf(request: Request) -> Response:
    """``POST /messages/{id}/pdf``: the message as an encrypted PDF to the recipient's own
    address, through the outbox (the gateway's delivery sends it)."""
    st = portal(request)
    if not same_origin_request(request, st.origins):
        raise HTTPException(403)
    form = await read_form(request)
    message_id = request.path_params["message_id"]
    async with st.services.db.session() as s:
        current = await recipient_session(s, request)
        if not check_session_token(current.csrf_token, field(form, "csrf")):
            raise HTTPException(403)
        msg, pm, access = await load_with_access(st, s, current, message_id)
        vault = st.services.vault
        password = await pdf_password_for(s, vault, current.tenant_id, msg.id, current.email)
        if not password:
            return RedirectResponse(f"/pdf-password?m={msg.id}", status_code=303)
        tenant = await s.get(Tenant, current.tenant_id)
        if tenant is None:
            raise HTTPException(404)
        base = portal_url_for(st.settings.portal_base_url, tenant.portal_host)
        link = f"{base}/messages/{msg.id}"
        ref = await references.issue(s, tenant.id, msg.id, current.email)
        raw, state = await pdf_notice(
            s,
            vault,
            tenant,
            pm,
            password=password,
            from_addr=tenant.notification_from or st.settings.sender_address,
            recipient=current.email,
            link=link,
            reply_link=link,
            expires_at=access.expires_at,
            portal_base_url=base,
            reference=ref,
            look=await resolve(s, tenant),
        )
        del password
        await outbox.post(
            s,
            vault,
            kind="pdf",
            tenant_id=tenant.id,
            mail_from=msg.mail_from,
            recipients=[current.email],
            raw=raw,
            lifetime=st.settings.queue_lifetime,
            message_id=msg.id,
        )
        if state == "attached":
            events.record(
                s, tenant.id, msg.id, events.PDF_SENT, current.email, current.email,
                size=len(raw), asked=True,
            )  # fmt: skip
        await audit(s, tenant.id, current.email, "portal.message.pdf_sent", msg.id)
        await s.commit()
    notice = "pdf_sent" if state == "attached" else "pdf_too_large"
    return RedirectResponse(f"/messages/{msg.id}?notice={notice}", status_code=303)
