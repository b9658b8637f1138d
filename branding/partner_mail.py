"""Mail to a partner's people: the console's sign-in code (sealed under the partner's own key,
so a partner with no tenant yet can sign in), and to its admins about their tenants' trials:
a week before a trial's last day, on its last day, and the day after it ended (the tenant's
mail then waits with ``451``).
Each is sent once per trial (``tenants.trial_reminders`` records which), sealed under the
tenant and put in the outbox like every mail of ours. The scheduler runs
:func:`send_trial_reminders` hourly; it is idempotent."""

from __future__ import annotations

import datetime
import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from branding.mail import Rendered, queue_rendered
from branding.templating import DEFAULT_BRAND_COLOR, render
from core.accounts.models import PartnerUser
from core.accounts.trials import today_utc
from core.models import Partner, Tenant, TenantKey

log = logging.getLogger("sealmail.partner")
MAIL_LIFETIME = 3 * 86400.0


def due_reminder(tenant: Tenant, today: datetime.date) -> str | None:
    """Which reminder (``7``, ``1`` or ``ended``) is due for the tenant today, if any."""
    end = tenant.trial_ends_on
    if tenant.plan != "trial" or end is None or tenant.standing != "active":
        return None
    sent = set(filter(None, (tenant.trial_reminders or "").split(",")))
    left = (end - today).days + 1  # days of service left, today included
    if left <= 0:
        key = "ended"
    elif left == 1:
        key = "1"
    elif left <= 7:
        key = "7"
    else:
        return None
    return None if key in sent else key


def render_trial_mail(key: str, tenant: Tenant, partner: Partner, console_url: str) -> Rendered:
    end = tenant.trial_ends_on.isoformat() if tenant.trial_ends_on else ""
    name = tenant.display_name or tenant.name
    if key == "ended":
        subject = f"Trial ended: {name}"
        headline = f"The trial of {name} has ended"
        lines = [
            f"The trial of {name} ended on {end}. Its mail now waits at the sending servers "
            "(it is not lost) until you convert the tenant to a paid plan.",
            "Converting takes one click in your partner console, and mail flows again at once.",
        ]
    else:
        when = "today is its last day" if key == "1" else f"its last day is {end}"
        subject = f"Trial ending: {name} ({end})"
        headline = f"The trial of {name} ends soon"
        lines = [
            f"The trial of {name} ends soon: {when}. After that its mail waits at the "
            "sending servers until the tenant is converted to a paid plan.",
            "Convert it in your partner console to keep its mail flowing without a pause.",
        ]
    ctx: dict[str, Any] = {
        "tenant_name": partner.name,
        "logo_url": "",
        "brand_color": DEFAULT_BRAND_COLOR,
        "headline": headline,
        "lines": lines,
        "console_url": console_url,
        "tenant_label": name,
        "partner_name": partner.name,
    }
    return Rendered(
        subject=subject,
        text=render("mail/partner_trial.txt", ctx),
        html=render("mail/partner_trial.html", ctx),
    )


async def remind_tenant(
    services: Any, session: AsyncSession, tenant: Tenant, today: datetime.date
) -> str | None:
    """Send the reminder due for ``tenant`` today to its partner's admins (caller commits)."""
    key = due_reminder(tenant, today)
    if key is None or not tenant.partner_id:
        return None
    partner = await session.get(Partner, tenant.partner_id)
    if partner is None:
        return None
    stmt = select(PartnerUser.email).where(
        PartnerUser.partner_id == partner.id, PartnerUser.role == "partner-admin"
    )
    recipients = sorted(set((await session.execute(stmt)).scalars()))
    base = services.settings.portal_base_url.rstrip("/")
    rendered = render_trial_mail(key, tenant, partner, f"{base}/partner/tenants/{tenant.id}")
    await queue_rendered(
        session,
        services.vault,
        tenant_id=tenant.id,
        mail_from=services.settings.sender_address,
        recipients=recipients,
        rendered=rendered,
        kind="notification",
        lifetime=MAIL_LIFETIME,
    )
    sent = [k for k in (tenant.trial_reminders or "").split(",") if k]
    tenant.trial_reminders = ",".join([*sent, key])
    if not recipients:
        log.info("trial reminder %s for %s: the partner has no partner admin", key, tenant.id)
    return key


async def send_trial_reminders(services: Any, today: datetime.date | None = None) -> int:
    """Every reminder due today, for every partner's trial tenant; returns how many."""
    day = today or today_utc()
    count = 0
    async with services.db.session() as s:
        stmt = select(Tenant.id).where(
            Tenant.plan == "trial",
            Tenant.trial_ends_on.is_not(None),
            Tenant.partner_id.is_not(None),
        )
        ids = list((await s.execute(stmt)).scalars())
    for tid in ids:
        async with services.db.write_gate.hold(), services.db.session() as s:
            tenant = await s.get(Tenant, tid)
            if tenant is not None and await remind_tenant(services, s, tenant, day):
                count += 1
                await s.commit()
    return count


async def partner_key(services: Any, session: AsyncSession, partner_id: str) -> None:
    """Make sure the partner has a key-encryption key of its own (made on first use)."""
    stmt = select(TenantKey.version).where(TenantKey.tenant_id == partner_id).limit(1)
    if (await session.execute(stmt)).scalar() is None:
        await services.keyring.create_tenant_key(session, partner_id)


async def mail_partner_code(
    services: Any, session: AsyncSession, partner: Partner, to: str, code: str, minutes: int
) -> None:
    """The console's sign-in code to ``to``, sealed and queued (the caller commits)."""
    await partner_key(services, session, partner.id)
    ctx: dict[str, Any] = {
        "tenant_name": partner.name,
        "logo_url": "",
        "brand_color": DEFAULT_BRAND_COLOR,
        "partner_name": partner.name,
        "code": code,
        "minutes": minutes,
        "recipient": to,
    }
    rendered = Rendered(
        subject=f"Your code to sign in to the partner console of {partner.name}",
        text=render("mail/partner_code.txt", ctx),
        html=render("mail/partner_code.html", ctx),
    )
    await queue_rendered(
        session,
        services.vault,
        tenant_id=partner.id,
        mail_from=services.settings.sender_address,
        recipients=[to],
        rendered=rendered,
        kind="code",
        lifetime=600.0,
    )
