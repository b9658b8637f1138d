"""Reminders of a trial's end to the partner's admins (issue 14, item 1), on both databases:
a week before the last day, on the last day and the day after it ended, each once, to partner
admins only (not technicians), sealed under the tenant; a converted or non-partner tenant
gets none. Also the partner console's sign-in code, sealed under the partner's own key
though the partner has no tenant yet."""

from __future__ import annotations

import datetime
import email
import email.policy

from sqlalchemy import select

from branding.partner_mail import due_reminder, mail_partner_code, send_trial_reminders
from core.accounts.partner_users import add_partner_user
from core.accounts.partners import create_partner
from core.accounts.tenants import create_tenant
from core.models import OutboxItem, OutboxRecipient, Tenant
from core.services import Services

END = datetime.date(2026, 3, 20)


def test_which_reminder_is_due() -> None:
    t = Tenant(plan="trial", trial_ends_on=END, standing="active", trial_reminders="")
    day = datetime.timedelta(days=1)
    assert due_reminder(t, END - 8 * day) is None
    assert due_reminder(t, END - 6 * day) == "7"
    assert due_reminder(t, END) == "1"  # its last day
    assert due_reminder(t, END + day) == "ended"
    t.trial_reminders = "7,1"
    assert due_reminder(t, END - 3 * day) is None and due_reminder(t, END) is None
    assert due_reminder(t, END + 5 * day) == "ended"
    t.plan = "paid"
    assert due_reminder(t, END + day) is None


async def _mails(services: Services) -> list[tuple[str, email.message.EmailMessage]]:
    async with services.db.session() as s:
        rows = (
            await s.execute(
                select(OutboxItem, OutboxRecipient.rcpt)
                .join(OutboxRecipient, OutboxRecipient.outbox_id == OutboxItem.id)
                .order_by(OutboxItem.created_at)
            )
        ).all()
        out = []
        for item, rcpt in rows:
            raw = await services.vault.read(s, item.tenant_id, item.object_id)
            out.append((rcpt, email.message_from_bytes(raw, policy=email.policy.default)))
        return out


async def test_reminders_go_to_partner_admins_once(services: Services) -> None:
    async with services.db.session() as s:
        p = await create_partner(s, "Northwind IT")
        await add_partner_user(s, p, "boss@msp.example", "partner-admin")
        await add_partner_user(s, p, "tech@msp.example", "partner-tech")
        await create_tenant(
            s, services.keyring, "Contoso", ["contoso.example"], partner=p.id, plan="trial",
            trial_ends_on=END,
        )  # fmt: skip
        await create_tenant(
            s, services.keyring, "Solo", ["solo.example"], plan="trial", trial_ends_on=END
        )
        await s.commit()
    assert await send_trial_reminders(services, END - datetime.timedelta(days=10)) == 0
    assert await send_trial_reminders(services, END - datetime.timedelta(days=5)) == 1
    assert await send_trial_reminders(services, END - datetime.timedelta(days=4)) == 0
    assert await send_trial_reminders(services, END) == 1
    assert await send_trial_reminders(services, END + datetime.timedelta(days=1)) == 1
    assert await send_trial_reminders(services, END + datetime.timedelta(days=2)) == 0
    mails = await _mails(services)
    assert {rcpt for rcpt, _m in mails} == {"boss@msp.example"}
    subjects = [str(m["Subject"]) for _r, m in mails]
    assert subjects == [
        "Trial ending: Contoso (2026-03-20)",
        "Trial ending: Contoso (2026-03-20)",
        "Trial ended: Contoso",
    ]
    body = mails[-1][1].get_body(("plain",)).get_content()
    assert "waits at the sending servers" in body and "/partner/tenants/" in body


async def test_a_partner_without_tenants_gets_its_sign_in_code(services: Services) -> None:
    async with services.db.session() as s:
        p = await create_partner(s, "Fresh MSP")
        await mail_partner_code(services, s, p, "boss@fresh.example", "482913", 10)
        await s.commit()
    [(rcpt, msg)] = await _mails(services)
    assert rcpt == "boss@fresh.example"
    assert "482913" in msg.get_body(("plain",)).get_content()
    assert "482913" not in str(msg["Subject"])
