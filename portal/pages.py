"""Rendering pages with branding's sandboxed environment, and the readable error pages.

Every page template lives under ``portal/templates``: the shared layout (``base.html``) and
``error.html`` at the top, one folder per area (``reader/``, ``sent/``, ``admin/``,
``support/``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader
from starlette.responses import HTMLResponse

from branding.brands import BrandLook
from branding.templating import make_environment, safe_logo_url
from core.models import Tenant

TEMPLATES_DIR = Path(__file__).parent / "templates"

ERRORS: dict[int, tuple[str, str]] = {
    400: (
        "This request could not be understood",
        "Something in the request was missing or malformed. Go back and try again.",
    ),
    401: (
        "Please open your message link again",
        "You are not signed in, or your session has ended. Open the link in the email that "
        "told you about the secure message, and we will send you a new code.",
    ),
    403: (
        "This form has expired",
        "For your safety the page could not be submitted. Reload the page and try again.",
    ),
    404: (
        "This link is not valid",
        "The address may be mistyped, or the message is no longer available. If you "
        "expected a secure message, ask the sender to send it again.",
    ),
    405: ("This action is not allowed here", "Go back and use the buttons on the page."),
    410: (
        "This message has expired",
        "Secure messages are kept for a limited time, and this one has reached the end of "
        "it, so it can no longer be opened. If you still need it, ask the sender to send "
        "it again.",
    ),
    429: (
        "Too many attempts",
        "For your protection we have paused this for a while. Please try again later.",
    ),
    500: (
        "Something went wrong on our side",
        "Nothing you did caused this. Please try again in a few minutes.",
    ),
    503: (
        "The service is busy for a moment",
        "We could not reach part of our system. Please try again in a few minutes.",
    ),
}


def branding_of(tenant: Tenant | None, look: BrandLook | None = None) -> dict[str, Any]:
    """What a page needs to wear a tenant's brand (``look``: one of its brands, e.g. the one
    a message's notice wore; else the tenant's settings)."""
    if tenant is None:
        return {}
    out = {
        "tenant_name": tenant.display_name or tenant.name,
        "logo_url": safe_logo_url(tenant.logo_url),
        "brand_css": f"/brand/{tenant.id}.css",
        "tenant_standing": tenant.standing,  # a suspended tenant's admin pages show a banner
        "tenant_partnered": bool(tenant.partner_id),  # ... that sends it to its provider
    }
    if look is not None:
        out.update(
            tenant_name=look.display_name,
            portal_intro=look.portal_intro,
            brand_footer=look.footer_text,
            privacy_url=look.privacy_url,
            support_contact=look.support_contact,
        )
        if look.brand_id:
            out["brand_css"] = f"/brand/{tenant.id}.css?b={look.brand_id}"
        if look.logo_png:
            out["logo_url"] = (
                f"/brand/{tenant.id}/logo/{look.brand_id}.png?v={look.logo_sha256[:16]}"
            )
    return out


class Pages:
    def __init__(self) -> None:
        self.env = make_environment([FileSystemLoader(TEMPLATES_DIR)])

    def render(
        self,
        name: str,
        context: Mapping[str, Any] | None = None,
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        html = self.env.get_template(name).render(**(context or {}))
        return HTMLResponse(html, status_code=status, headers=dict(headers or {}))

    def error(
        self, status: int, *, headers: Mapping[str, str] | None = None, **context: Any
    ) -> HTMLResponse:
        title, text = ERRORS.get(status, ERRORS[500])
        ctx = {"status": status, "title": title, "text": text, **context}
        return self.render("error.html", ctx, status=status, headers=headers)
