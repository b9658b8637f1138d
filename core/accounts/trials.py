"""Plans that end or limit by themselves, with no billing system: a trial runs through its end
date (UTC) and stops after it (``451 4.7.1``, mail waits at the sender); converting it to paid
restores service at once. Not-for-resale (NFR) tenants are held to the partner's agreement:
at most so many users, and so many messages a calendar month."""

from __future__ import annotations

import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import audit
from core.errors import PermanentError
from core.models import Message, Partner, Tenant, User

REMINDER_DAYS = (7, 1)  # reminders to the partner this many days before the trial ends


def today_utc() -> datetime.date:
    return datetime.datetime.now(datetime.UTC).date()


def parse_end_date(text: str) -> datetime.date:
    """``YYYY-MM-DD`` as typed in a form, the CLI or the API; a one-line error otherwise."""
    try:
        return datetime.date.fromisoformat(text.strip())
    except ValueError:
        raise PermanentError(f"the trial end date must be YYYY-MM-DD, not {text!r}") from None


def trial_over(tenant: Tenant, today: datetime.date | None = None) -> bool:
    """The tenant's trial ran through its last day: no more mail until it is converted."""
    end = tenant.trial_ends_on
    return tenant.plan == "trial" and end is not None and (today or today_utc()) > end


def month_start(today: datetime.date | None = None) -> float:
    d = today or today_utc()
    first = datetime.datetime(d.year, d.month, 1, tzinfo=datetime.UTC)
    return first.timestamp()


async def set_trial_end(
    session: AsyncSession, tenant: Tenant, end: datetime.date | None, actor: str
) -> None:
    """Put ``tenant`` on a trial ending ``end`` (reminders start over)."""
    old = tenant.trial_ends_on
    tenant.plan = "trial"
    tenant.trial_ends_on = end
    tenant.trial_reminders = ""
    await audit(
        session,
        tenant.id,
        actor,
        "tenant.trial",
        tenant.id,
        ends_on=end.isoformat() if end else None,
        previous=old.isoformat() if old else None,
    )


async def change_plan(session: AsyncSession, tenant: Tenant, plan: str, actor: str) -> None:
    """Convert a tenant to ``paid`` or ``nfr`` (a trial that ended can send again at once)."""
    if plan not in ("paid", "nfr"):
        raise PermanentError("a tenant can be converted to paid or nfr")
    old = tenant.plan
    tenant.plan = plan
    tenant.trial_ends_on = None
    tenant.trial_reminders = ""
    await audit(session, tenant.id, actor, "tenant.plan", tenant.id, plan=plan, previous=old)


async def nfr_limits(session: AsyncSession, tenant: Tenant) -> tuple[int | None, int | None]:
    """(users, messages a month) the tenant's partner agreed for its NFR tenants."""
    if tenant.plan != "nfr" or not tenant.partner_id:
        return None, None
    partner = await session.get(Partner, tenant.partner_id)
    if partner is None:
        return None, None
    return partner.nfr_max_users, partner.nfr_max_messages


async def messages_this_month(session: AsyncSession, tenant_id: str) -> int:
    stmt = select(func.count()).where(
        Message.tenant_id == tenant_id, Message.received_at >= month_start()
    )
    return int((await session.execute(stmt)).scalar() or 0)


async def nfr_message_refusal(session: AsyncSession, tenant: Tenant) -> str | None:
    """Why an NFR tenant may send no more mail this month, or ``None``."""
    _, most = await nfr_limits(session, tenant)
    if most is None:
        return None
    if await messages_this_month(session, tenant.id) >= most:
        return (
            f"this account's not-for-resale licence allows {most} messages a month and they"
            " are used up; mail can be sent again on the 1st, or once the partner converts it"
            " to paid"
        )
    return None


async def check_nfr_users(session: AsyncSession, tenant: Tenant) -> None:
    """Refuse one more user of an NFR tenant over its partner's agreement."""
    most, _ = await nfr_limits(session, tenant)
    if most is None:
        return
    count = (
        await session.execute(select(func.count()).where(User.tenant_id == tenant.id))
    ).scalar() or 0
    if count >= most:
        raise PermanentError(
            f"{tenant.name} is a not-for-resale tenant: its licence allows {most} users,"
            " and it has them all; remove one first, or convert the tenant to paid"
        )
