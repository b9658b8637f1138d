"""The branded notice a sender gets when a compliance officer rejects a held message: which
rule held it and that an officer rejected it; never anything of the message itself."""

from __future__ import annotations

from email.utils import formataddr

from branding.mail import Rendered, compose
from branding.templating import render, safe_color, safe_logo_url
from core.models import Tenant
from core.policy.models import HeldMessage
from core.quarantine import recipients_of


def compose_reject_notice(
    tenant: Tenant, held: HeldMessage, note: str, to_addr: str, from_addr: str
) -> bytes:
    name = tenant.display_name or tenant.name
    ctx = {
        "tenant_name": name,
        "logo_url": safe_logo_url(tenant.logo_url),
        "brand_color": safe_color(tenant.brand_color),
        "queue_id": held.message_id,
        "recipients": ", ".join(recipients_of(held)),
        "rule": " ".join((held.rule or "hold").split()),
        "note": " ".join(note.split()),
    }
    rendered = Rendered(
        subject="Your message was not delivered: rejected by your compliance officer",
        text=render("mail/quarantine_rejected.txt", ctx),
        html=render("mail/quarantine_rejected.html", ctx),
    )
    return compose(
        from_addr=formataddr((name, from_addr)) if name.isascii() else from_addr,
        to_addr=to_addr,
        rendered=rendered,
        headers={"Auto-Submitted": "auto-replied"},
    )
