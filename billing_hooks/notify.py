"""Who hears about a billing action, and what the email says (the words live in
``branding/templates/mail/billing_*``). ``billing_hooks`` only states the facts; the
mailer that renders, seals and queues the email is handed in by the caller (portal, worker,
CLI), which may see ``branding`` and ``archive``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_hooks.schedule import (
    ACCOUNT_FLAG,
    CHARGE_SECONDARY,
    FEE_LATE,
    RESUME,
    SECONDARY_REQUEST,
    SUSPEND,
    TICKET_OPEN,
)
from core.models import AccountContact, BillingAccount

# action -> email template (branding/templates/mail/billing_<kind>.txt|html); the phone
# follow-up is a task for our staff, not an email
MAIL_FOR_ACTION = {
    TICKET_OPEN: "unpaid",
    FEE_LATE: "late_fee",
    CHARGE_SECONDARY: "secondary_charged",
    SECONDARY_REQUEST: "secondary_request",
    ACCOUNT_FLAG: "delinquent",
    SUSPEND: "suspended",
    RESUME: "resumed",
}


# Renders and queues one email to the recipients in the session (account, recipients, kind,
# context); False if it could not (e.g. nothing to seal it under), logged, never fatal.
Mailer = Callable[[AsyncSession, BillingAccount, list[str], str, dict[str, Any]], Awaitable[bool]]


ROLE_ORDER = ("billing", "owner", "technical", "other")


async def billing_contacts(session: AsyncSession, account_id: str) -> list[AccountContact]:
    """The contacts with role ``billing``; if there are none, the first role that has some."""
    stmt = select(AccountContact).where(AccountContact.account_id == account_id)
    contacts = list((await session.execute(stmt)).scalars().all())
    for role in ROLE_ORDER:
        chosen = sorted((c for c in contacts if c.role == role), key=lambda c: c.email)
        if chosen:
            return chosen
    return []
