"""The emails of the dunning schedule to an account's billing contact, branded like the rest
of our mail, sealed and put in the outbox like the one-time code email.

``billing_mailer(services)`` returns the mailer that ``billing_hooks`` calls (it matches
``billing_hooks.notify.Mailer``; branding does not import billing_hooks). ``services``
needs ``.vault`` and ``.settings`` (core.services.Services).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from branding.mail import Rendered, queue_rendered
from branding.templating import DEFAULT_BRAND_COLOR, render
from core.accounts.billing_accounts import sealing_tenant_id
from core.models import BillingAccount

log = logging.getLogger("sealmail.billing")
MAIL_LIFETIME = 5 * 86400.0

# kind -> (subject, headline, paragraphs); {placeholders} come from the action's context
_TEXTS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "unpaid": (
        "Invoice {invoice_number} is unpaid",
        "Your invoice is unpaid",
        (
            "We have not received payment for invoice {invoice_number} of {amount}, "
            "due on {due_on}. We have opened a support ticket and will call you about it.",
            "If the invoice is still unpaid on the 5th a late fee is added, and after the "
            "15th the service is suspended.",
        ),
    ),
    "late_fee": (
        "Late fee added: invoice {invoice_number}",
        "A late fee was added",
        (
            "Invoice {invoice_number} of {amount}, due on {due_on}, is still unpaid, so a "
            "late fee has been charged as our billing policy states.",
            "If it is still unpaid after the 15th the service is suspended.",
        ),
    ),
    "secondary_charged": (
        "We are charging your secondary payment method",
        "Your secondary payment method is being charged",
        (
            "Invoice {invoice_number} of {amount} could not be collected from your primary "
            "payment method, so we are charging your secondary one.",
            "If neither can be charged by the end of the 3rd the service is suspended.",
        ),
    ),
    "secondary_request": (
        "Action needed: add a secondary payment method",
        "Please add a secondary payment method",
        (
            "Your account has been seriously late with payment more than twice this year, "
            "so our billing policy requires a second way to pay.",
            "Until one is on file, an invoice not paid by the end of the 3rd of the month "
            "suspends the service.",
        ),
    ),
    "delinquent": (
        "Your account is flagged as delinquent",
        "Your account is flagged as delinquent",
        (
            "Your account has been seriously late with payment more than twice this year.",
            "From now on invoices must be paid by the end of the 3rd, from your primary or "
            "a secondary payment method, or the service is suspended.",
        ),
    ),
    "suspended": (
        "Service suspended: {account_name}",
        "Your service is suspended",
        (
            "The service of {account_name} is suspended because of an unpaid invoice "
            "({reason_text}).",
            "Incoming and outgoing mail waits at the sending servers and is not lost; "
            "recipients can still open the messages you already sent. Paying the invoice "
            "reinstates the service at once.",
        ),
    ),
    "resumed": (
        "Service reinstated: {account_name}",
        "Your service is reinstated",
        (
            "Thank you: the service of {account_name} is in good standing again. Mail "
            "that waited at the sending servers is delivered on their next attempt.",
        ),
    ),
}
_REASONS = {"billing": "overdue invoice", "trial": "the trial has ended"}


def render_billing_email(kind: str, context: dict[str, Any]) -> Rendered:
    subject, headline, paragraphs = _TEXTS[kind]
    values = {k: " ".join(str(v).split()) for k, v in context.items()}
    values["reason_text"] = _REASONS.get(str(context.get("reason", "")), "unpaid invoice")
    if kind == "suspended" and context.get("reason") == "trial":
        paragraphs = (
            "The trial of {account_name} has ended, so the service is suspended. Mail "
            "waits at the sending servers and is not lost.",
            "Choose a paid plan to continue: the service resumes at once.",
        )
        subject = "Your trial has ended: {account_name}"
    ctx = {
        "tenant_name": "Sealmail billing",
        "logo_url": "",
        "brand_color": DEFAULT_BRAND_COLOR,
        "headline": headline,
        "lines": [p.format(**values) for p in paragraphs],
        "pay_url": values.get("pay_url", ""),
        "account_name": values.get("account_name", ""),
        "invoice_number": values.get("invoice_number", ""),
        "amount": values.get("amount", ""),
        "due_on": values.get("due_on", ""),
    }
    return Rendered(
        subject=subject.format(**values),
        text=render("mail/billing.txt", ctx),
        html=render("mail/billing.html", ctx),
    )


def billing_mailer(
    services: Any,
) -> Callable[[AsyncSession, BillingAccount, list[str], str, dict[str, Any]], Awaitable[bool]]:
    async def mail(
        session: AsyncSession,
        account: BillingAccount,
        recipients: list[str],
        kind: str,
        context: dict[str, Any],
    ) -> bool:
        tenant_id = await sealing_tenant_id(session, account)
        if tenant_id is None or kind not in _TEXTS:
            return False
        rendered = render_billing_email(kind, context)
        await queue_rendered(
            session,
            services.vault,
            tenant_id=tenant_id,
            mail_from=services.settings.sender_address,
            recipients=recipients,
            rendered=rendered,
            kind="notification",
            lifetime=MAIL_LIFETIME,
        )
        return True

    return mail
