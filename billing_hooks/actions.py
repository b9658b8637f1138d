"""Taking an action of the dunning engine: record it (the unique key makes it once only),
change the standing, queue the signed outbound webhook and email the billing contact — all
in the caller's transaction."""

from __future__ import annotations

import datetime
import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_hooks import enforcement, outbound
from billing_hooks.dunning import Action
from billing_hooks.models import DunningAction, Invoice, PaymentMethod
from billing_hooks.notify import MAIL_FOR_ACTION, Mailer, billing_contacts
from billing_hooks.schedule import ACCOUNT_FLAG, CHARGE_SECONDARY, RESUME, SUSPEND
from core.config.settings import Settings
from core.ids import new_id
from core.models import BillingAccount

log = logging.getLogger("sealmail.billing")


def money(cents: int, currency: str) -> str:
    return f"{cents / 100:,.2f} {currency}"


async def take(
    session: AsyncSession,
    account: BillingAccount,
    action: Action,
    today: datetime.date,
    settings: Settings,
    mailer: Mailer | None,
) -> dict[str, Any]:
    """Apply ``action``; returns the outbound webhook's data. The caller commits (and on an
    IntegrityError of the unique key knows that someone else took it first)."""
    period = action.period
    if action.action == RESUME:
        # resuming is driven by the standing, not by history: several in a day are fine
        period = f"{today.isoformat()}:{new_id(nbytes=3)[:5]}"
    session.add(
        DunningAction(
            account_id=account.id,
            invoice_id=action.invoice_id,
            action=action.action,
            period=period,
            for_date=today,
        )
    )
    await session.flush()  # the unique key decides here, before any effect
    tenants: list[str] = []
    if action.action == SUSPEND:
        tenants = await enforcement.suspend(session, account, action.reason)
    elif action.action == RESUME:
        tenants = await enforcement.resume(session, account)
    elif action.action == ACCOUNT_FLAG:
        account.delinquent = True
        account.delinquent_year = int(action.period)
    contacts = await billing_contacts(session, account.id)
    data: dict[str, Any] = {
        "account": account.external_id,
        "account_name": account.name,
        "action": action.action,
        "for_date": today.isoformat(),
        "reason": action.reason,
        "tenants": tenants,
        "contacts": [
            {"email": c.email, "name": c.name, "phone": c.phone, "role": c.role} for c in contacts
        ],
    }
    invoice = await session.get(Invoice, action.invoice_id) if action.invoice_id else None
    if invoice is not None:
        data["invoice"] = {
            "id": invoice.external_id,
            "number": invoice.number,
            "amount": invoice.amount_cents,
            "currency": invoice.currency,
            "due_on": invoice.due_on.isoformat() if invoice.due_on else None,
        }
    if action.action == CHARGE_SECONDARY:
        stmt = select(PaymentMethod.external_id).where(
            PaymentMethod.account_id == account.id,
            PaymentMethod.role == "secondary",
            PaymentMethod.status == "active",
        )
        data["payment_method"] = (await session.execute(stmt.limit(1))).scalar()
    outbound.queue(session, action.action, data)
    kind = MAIL_FOR_ACTION.get(action.action)
    if kind and mailer is not None and contacts:
        context = {
            "account_name": account.name or account.external_id,
            "reason": action.reason,
            "for_date": today.isoformat(),
            "pay_url": settings.billing_pay_url,
            "invoice_number": invoice.number if invoice else "",
            "amount": money(invoice.amount_cents, invoice.currency) if invoice else "",
            "due_on": invoice.due_on.isoformat() if invoice and invoice.due_on else "",
        }
        if not await mailer(session, account, [c.email for c in contacts], kind, context):
            log.warning("billing: no email for %s of account %s", action.action, account.id)
    return data
