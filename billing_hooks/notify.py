"""Who hears about a billing action, and what the email says (the words live in
``branding/templates/mail/billing_*``). ``billing_hooks`` only states the facts; the
mailer that renders, seals and queues the email is handed in by the caller (portal, worker,
CLI), which may see ``branding`` and ``archive``."""

from __future__ import annotations

from typing import Any, Protocol

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


class Mailer(Protocol):
    async def __call__(
        self,
        session: AsyncSession,
        account: BillingAccount,
        recipients: list[str],
        kind: str,
        context: dict[str, Any],
    ) -> bool:
        """Render and queue one email to ``recipients`` in ``session``; False if it could
        not (e.g. nothing to seal it under), which is logged, never fatal."""
        ...


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
