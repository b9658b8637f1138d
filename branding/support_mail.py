"""The emails an account contact gets about their support PIN: the one-time code for
``/pin``, "your PIN was changed" and "your PIN is locked" (the words live in
``branding/templates/mail/support_pin_*``). None of them ever holds a PIN.

``support_mailer(vault, ...)`` returns the mailer that ``support.notify`` calls (it matches
``support.notify.Mailer``; branding does not import support): it renders, seals and queues,
as ``branding.billing_mail`` does for the dunning mail. ``vault`` is ``Services.vault``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from branding.mail import Rendered, queue_rendered
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
        text=render("mail/support_pin_code.txt", ctx),
        html=render("mail/support_pin_code.html", ctx),
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
        text=render("mail/support_pin_changed.txt", ctx),
        html=render("mail/support_pin_changed.html", ctx),
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
        text=render("mail/support_pin_locked.txt", ctx),
        html=render("mail/support_pin_locked.html", ctx),
    )


# kind (support.notify's PIN_CODE, PIN_CHANGED, PIN_LOCKED) -> its renderer
_RENDERERS: dict[str, Callable[..., Rendered]] = {
    "pin_code": render_pin_code,
    "pin_changed": render_pin_changed,
    "pin_locked": render_pin_locked,
}


def support_mailer(
    vault: Any, *, sender_address: str, portal_url: str
) -> Callable[..., Awaitable[None]]:
    """The mailer for ``support.notify``: mail comes from the sealing tenant's notification
    address (else ``sender_address``) with ``Auto-Submitted: auto-generated``."""

    async def mail(
        session: AsyncSession,
        *,
        tenant_id: str,
        brand: Tenant | None,
        to: str,
        kind: str,
        context: dict[str, Any],
        outbox_kind: str,
        lifetime: float,
    ) -> None:
        rendered = _RENDERERS[kind](brand, portal_url=portal_url, **context)
        tenant = await session.get(Tenant, tenant_id)
        mail_from = (tenant.notification_from if tenant else "") or sender_address
        await queue_rendered(
            session,
            vault,
            tenant_id=tenant_id,
            mail_from=mail_from,
            recipients=[to],
            rendered=rendered,
            kind=outbox_kind,
            lifetime=lifetime,
        )

    return mail
