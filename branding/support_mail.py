"""The emails an account contact gets about their support PIN: the one-time code for
``/pin``, "your PIN was changed" and "your PIN is locked". None of them ever holds a PIN."""

from __future__ import annotations

from typing import Any

from branding.mail import Rendered
from branding.notifications import format_time
from branding.templating import render, safe_color, safe_logo_url
from core.models import Tenant


def _context(tenant: Tenant | None, account_name: str, portal_url: str) -> dict[str, Any]:
    name = (tenant.display_name or tenant.name) if tenant is not None else "Secure mail"
    return {
        "tenant_name": name,
        "logo_url": safe_logo_url(tenant.logo_url) if tenant is not None else "",
        "brand_color": safe_color(tenant.brand_color if tenant is not None else ""),
        "account_name": " ".join(account_name.split()) or name,
        "portal_url": portal_url.rstrip("/"),
    }


def render_pin_code(
    tenant: Tenant | None,
    *,
    code: str,
    recipient: str,
    account_name: str,
    minutes: int,
    portal_url: str,
) -> Rendered:
    ctx = _context(tenant, account_name, portal_url)
    ctx.update(code=code, recipient=recipient, minutes=minutes)
    return Rendered(
        subject="Your code for the support PIN page",
        text=render("support/mail_pin_code.txt", ctx),
        html=render("support/mail_pin_code.html", ctx),
    )


def render_pin_changed(
    tenant: Tenant | None,
    *,
    recipient: str,
    account_name: str,
    chosen: bool,
    at: float,
    portal_url: str,
) -> Rendered:
    ctx = _context(tenant, account_name, portal_url)
    ctx.update(recipient=recipient, chosen=chosen, when=format_time(at))
    return Rendered(
        subject="Your support PIN was changed",
        text=render("support/mail_pin_changed.txt", ctx),
        html=render("support/mail_pin_changed.html", ctx),
    )


def render_pin_locked(
    tenant: Tenant | None,
    *,
    recipient: str,
    account_name: str,
    failures: int,
    at: float,
    portal_url: str,
) -> Rendered:
    ctx = _context(tenant, account_name, portal_url)
    ctx.update(recipient=recipient, failures=failures, when=format_time(at))
    return Rendered(
        subject="Your support PIN is locked",
        text=render("support/mail_pin_locked.txt", ctx),
        html=render("support/mail_pin_locked.html", ctx),
    )
