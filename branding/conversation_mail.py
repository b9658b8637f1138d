"""The emails a sender gets about a secure message's recipients: the "opened" receipt
(``X-Sealmail-Receipt: yes`` or the tenant's default) and "a recipient asked for a new
copy" of a revoked or expired message (the words live in ``branding/templates/mail/
receipt_opened.*`` and ``copy_requested.*``).

Both go to the sender, who wrote the subject: it is shown to them, never to anyone else.
"""

from __future__ import annotations

from typing import Any

from branding.mail import Rendered, compose
from branding.notifications import format_time
from branding.templating import render, safe_color, safe_logo_url
from core.models import Tenant


def _context(tenant: Tenant) -> dict[str, Any]:
    return {
        "tenant_name": tenant.display_name or tenant.name,
        "logo_url": safe_logo_url(tenant.logo_url),
        "brand_color": safe_color(tenant.brand_color),
    }


def _one_line(text: str, limit: int = 200) -> str:
    return " ".join(text.split())[:limit]


def render_receipt_opened(
    tenant: Tenant, *, reader: str, subject: str, opened_at: float, sent_link: str
) -> Rendered:
    """``reader`` is how the recipient is named ("Bob <bob@client.example>")."""
    ctx = _context(tenant)
    ctx.update(
        reader=_one_line(reader),
        subject=_one_line(subject) or "(no subject)",
        when=format_time(opened_at),
        sent_link=sent_link,
    )
    return Rendered(
        subject=f"Opened: {ctx['subject']}",
        text=render("mail/receipt_opened.txt", ctx),
        html=render("mail/receipt_opened.html", ctx),
    )


def render_copy_requested(
    tenant: Tenant, *, reader: str, subject: str, sent_at: float, sent_link: str
) -> Rendered:
    ctx = _context(tenant)
    ctx.update(
        reader=_one_line(reader),
        subject=_one_line(subject) or "(no subject)",
        sent=format_time(sent_at),
        sent_link=sent_link,
    )
    return Rendered(
        subject=f"{ctx['reader']} asked for a new copy of your secure message",
        text=render("mail/copy_requested.txt", ctx),
        html=render("mail/copy_requested.html", ctx),
    )


def compose_to_sender(tenant: Tenant, rendered: Rendered, *, to: str, mail_from: str) -> bytes:
    """The mail, from the tenant's notification address, marked as automatic (RFC 3834) so
    no auto-responder answers it."""
    return compose(
        from_addr=mail_from,
        to_addr=to,
        rendered=rendered,
        headers={"Auto-Submitted": "auto-generated"},
    )
