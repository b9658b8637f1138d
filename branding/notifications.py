"""The emails a recipient gets from us: the notice that a secure message waits in the
portal, and the one-time code that opens it.

Phishing is the risk of this kind of mail, so every notice says how to check it is real:
the link only ever points to the portal's own host, the recipient can go there by hand,
and we never ask for a password by email.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from branding.brands import BrandLook, look_of
from branding.mail import Rendered
from branding.templating import render, safe_color, safe_logo_url
from core.models import Tenant

_MONTHS = (
    "January February March April May June July August September October November December"
).split()


def format_time(epoch: float) -> str:
    """``14 March 2025, 09:30 UTC``: unambiguous in every locale, independent of the host."""
    t = time.gmtime(epoch)
    return f"{t.tm_mday} {_MONTHS[t.tm_mon - 1]} {t.tm_year}, {t.tm_hour:02d}:{t.tm_min:02d} UTC"


def portal_host(portal_base_url: str) -> str:
    return urlsplit(portal_base_url).netloc or portal_base_url


def _tenant_context(tenant: Tenant) -> dict[str, Any]:
    return {
        "tenant_name": tenant.display_name or tenant.name,
        "logo_url": safe_logo_url(tenant.logo_url),
        "brand_color": safe_color(tenant.brand_color),
    }


def _one_line(text: str) -> str:
    return " ".join(text.split())


LOGO_CID = "logo@sealmail"


def _brand_context(look: BrandLook, logo_src: str) -> dict[str, Any]:
    return {
        "tenant_name": look.display_name,
        "brand_color": look.color,
        "brand_text_color": look.text_color,
        "logo_src": logo_src,
        "notification_text": look.notification_text,
        "footer_text": look.footer_text,
        "read_button_text": look.button_text,
        "privacy_url": look.privacy_url,
        "support_contact": look.support_contact,
        "show_sender": look.show_sender,
        "show_subject": look.show_subject,
    }


def render_notification(
    tenant: Tenant,
    *,
    sender_name: str,
    sender_address: str,
    subject: str | None,
    link: str,
    recipient: str,
    expires_at: float,
    portal_base_url: str,
    reference: str = "",
    look: BrandLook | None = None,
    logo_src: str = "",
) -> Rendered:
    """The default notice (text and HTML). ``subject=None`` when the tenant hides subjects;
    ``portal_base_url`` is the tenant's (:func:`core.portal_links.portal_url_for`);
    ``reference`` the notice's code for ``/verify`` (:mod:`branding.references`)."""
    look = look or look_of(tenant, None)
    ctx = {**_tenant_context(tenant), **_brand_context(look, logo_src)}
    sender = _one_line(sender_name) or sender_address
    if not look.show_subject:
        subject = None
    shown_subject = _one_line(subject) if subject is not None else None
    ctx.update(
        sender_name=sender,
        sender_address=sender_address,
        subject=shown_subject,
        link=link,
        recipient=recipient,
        expires=format_time(expires_at),
        portal_url=portal_base_url.rstrip("/"),
        portal_host=portal_host(portal_base_url),
        reference=reference,
    )
    who = sender if look.show_sender else look.display_name
    if shown_subject:
        mail_subject = f"Secure message from {who}: {shown_subject}"
    else:
        mail_subject = f"Secure message from {who}"
    text = render("mail/notification.txt", ctx)
    html = render("mail/notification.html", ctx)
    if look.template_html or look.template_text:
        # a tenant's own template, sandboxed in its own process; the default if it fails
        from branding.custom_templates import render_or_default

        custom = {**ctx, "subject": shown_subject or ""}
        html = render_or_default(look.template_html, custom, html=True, default=html)
        text = render_or_default(look.template_text, custom, html=False, default=text)
    return Rendered(subject=mail_subject, text=text, html=html)


def render_code_email(tenant: Tenant, *, code: str, recipient: str, minutes: int) -> Rendered:
    """The one-time code; the code is not in the subject, so lock screens do not show it."""
    ctx = _tenant_context(tenant)
    ctx.update(code=code, recipient=recipient, minutes=minutes)
    return Rendered(
        subject=f"Your code to open a secure message from {ctx['tenant_name']}",
        text=render("mail/code.txt", ctx),
        html=render("mail/code.html", ctx),
    )


def render_invitation(
    tenant: Tenant, *, recipient: str, role_words: str, invited_by: str, link: str
) -> Rendered:
    """The mail a new user of a tenant gets when an admin adds them in ``/admin/users``."""
    ctx = _tenant_context(tenant)
    ctx.update(recipient=recipient, role_words=role_words, invited_by=invited_by, link=link)
    return Rendered(
        subject=f"You are invited to {ctx['tenant_name']}'s secure mail",
        text=render("mail/invitation.txt", ctx),
        html=render("mail/invitation.html", ctx),
    )
