"""The mail a recipient of method ``pdf`` gets (issue 16): the branded notice with the
message as an AES-256 encrypted PDF attached (:mod:`branding.pdf_message`), built from the
parts sealed for the portal, so the gateway's pipeline and the portal's "Send me this
message as a PDF" send the same thing.

Without a password (the recipient has not chosen one yet) the notice carries no PDF: it
says that messages from the tenant arrive as PDFs and leads to the portal, where the
recipient reads this one and chooses their password. A message whose attachments are over
:data:`MAX_ATTACHED` gets the same notice saying it is too large to attach. The password
is a parameter, chosen by the caller (``conversations.pdf_passwords.pdf_password_for``);
no mail ever contains it.
"""

from __future__ import annotations

import asyncio
import email.utils
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from branding.brands import BrandLook
from branding.mail import Rendered, compose
from branding.notifications import (
    LOGO_CID,
    _brand_context,
    _one_line,
    _tenant_context,
    format_time,
    portal_host,
)
from branding.pdf_message import EncryptedPdf, PdfPage
from branding.templating import render
from core.models import Tenant
from core.policy.textutil import html_to_text
from core.portal_message import PortalMessage
from core.storage.vault import Vault

MAX_ATTACHED = 25 * 1024 * 1024  # attachments above this in all: the portal notice instead
PDF_FILENAME = "secure-message.pdf"
NOTICE_HEADERS = {"Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All"}
State = Literal["attached", "choose", "too_large"]


async def read_message(
    session: AsyncSession, vault: Vault, tenant_id: str, meta_object_id: str
) -> PortalMessage:
    return PortalMessage.from_json(await vault.read(session, tenant_id, meta_object_id))


def too_large(pm: PortalMessage) -> bool:
    return sum(p.size for p in pm.attachments) > MAX_ATTACHED


def _names(values: tuple[str, ...]) -> list[str]:
    return [_one_line(v) for v in values if v.strip()]


async def message_pdf(
    session: AsyncSession,
    vault: Vault,
    tenant: Tenant,
    pm: PortalMessage,
    *,
    password: str,
    reply_link: str,
) -> bytes:
    """The encrypted PDF of ``pm``: its text (an HTML-only body as text) and every sealed
    attachment embedded, read from the vault one at a time."""
    text = ""
    if pm.text_object_id:
        text = (await vault.read(session, tenant.id, pm.text_object_id)).decode("utf-8", "replace")
    elif pm.html_object_id:
        html = (await vault.read(session, tenant.id, pm.html_object_id)).decode("utf-8", "replace")
        text = await asyncio.to_thread(html_to_text, html)
    sender = _one_line(pm.sender_name) or _one_line(pm.sender) or "The sender"
    when = f" on {_one_line(pm.date)}" if pm.date else ""
    page = PdfPage(
        subject=_one_line(pm.subject),
        sentence=f"{sender} sent you this message{when}.",
        sender=_one_line(pm.sender),
        to=_names(pm.to),
        cc=_names(pm.cc),
        date=_one_line(pm.date),
        text=text,
        attachments=[(p.filename, p.size, p.sha256) for p in pm.attachments],
        reply_link=reply_link,
        tenant_name=tenant.display_name or tenant.name,
    )
    builder = await asyncio.to_thread(EncryptedPdf, page)
    for part in pm.attachments:
        data = await vault.read(session, tenant.id, part.object_id)
        await asyncio.to_thread(builder.attach, part.filename or "attachment", data)
        del data  # held once, by the PDF being built
    return await asyncio.to_thread(builder.finish, password)


def render_pdf_notice(
    tenant: Tenant,
    pm: PortalMessage,
    *,
    state: State,
    link: str,
    recipient: str,
    expires_at: float,
    portal_base_url: str,
    reference: str,
    look: BrandLook,
    logo_src: str,
) -> Rendered:
    """The notice's text and HTML for ``state`` (the tenant's own notice template is not
    used: it cannot know about the PDF)."""
    ctx = {**_tenant_context(tenant), **_brand_context(look, logo_src)}
    name, address = email.utils.parseaddr(pm.sender)
    sender = _one_line(pm.sender_name or name) or address or "The sender"
    subject = _one_line(pm.subject) if look.show_subject and not tenant.hide_subject else None
    base = portal_base_url.rstrip("/")
    ctx.update(
        state=state,
        sender_name=sender,
        sender_address=address,
        subject=subject or None,
        link=link,
        recipient=recipient,
        expires=format_time(expires_at),
        portal_url=base,
        portal_host=portal_host(portal_base_url),
        reference=reference,
        password_url=f"{base}/pdf-password",
        pdf_filename=PDF_FILENAME,
        limit_mb=MAX_ATTACHED // (1024 * 1024),
    )
    who = sender if look.show_sender else look.display_name
    mail_subject = f"Secure message from {who}" + (f": {subject}" if subject else "")
    return Rendered(
        subject=mail_subject,
        text=render("mail/pdf_notice.txt", ctx),
        html=render("mail/pdf_notice.html", ctx),
    )


async def pdf_notice(
    session: AsyncSession,
    vault: Vault,
    tenant: Tenant,
    pm: PortalMessage,
    *,
    password: str | None,
    from_addr: str,
    recipient: str,
    link: str,
    reply_link: str,
    expires_at: float,
    portal_base_url: str,
    reference: str,
    look: BrandLook,
) -> tuple[bytes, State]:
    """The whole mail for ``recipient`` and what it carries: the PDF (``attached``), or the
    notice asking them to choose a password (``choose``) or saying the message is too large
    (``too_large``)."""
    state: State = "choose" if not password else "too_large" if too_large(pm) else "attached"
    files: list[tuple[str, str, bytes]] = []
    if state == "attached":
        assert password
        pdf = await message_pdf(
            session, vault, tenant, pm, password=password, reply_link=reply_link
        )
        files.append((PDF_FILENAME, "application/pdf", pdf))
        del pdf
    images = [(LOGO_CID, look.logo_png)] if look.logo_png else []

    def build() -> bytes:
        rendered = render_pdf_notice(
            tenant,
            pm,
            state=state,
            link=link,
            recipient=recipient,
            expires_at=expires_at,
            portal_base_url=portal_base_url,
            reference=reference,
            look=look,
            logo_src=f"cid:{LOGO_CID}" if images else "",
        )
        return compose(
            from_addr=from_addr,
            to_addr=recipient,
            rendered=rendered,
            headers=NOTICE_HEADERS,
            inline_images=images,
            attachments=files,
        )

    raw = await asyncio.to_thread(build)
    files.clear()
    return raw, state
