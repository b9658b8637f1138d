"""A partner's tenants as its console and API show them: standing in words, plan and trial
end, messages sealed this month, storage used; and the one way to reach a tenant as a
partner (:func:`partner_tenant`: another partner's tenant is "not found", never "forbidden",
so ids of other partners' tenants cannot be probed)."""

from __future__ import annotations

import dataclasses
import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.accounts.trials import month_start, today_utc, trial_over
from core.errors import NotFound
from core.models import Message, MessageRecipient, SealedObject, Tenant, TenantDomain, User

SEALED = ("portal", "pgp", "smime", "pdf")


@dataclasses.dataclass(frozen=True)
class TenantSummary:
    tenant: Tenant
    domains: list[str]
    users: int
    messages_this_month: int
    sealed_this_month: int
    storage_bytes: int

    @property
    def state(self) -> str:
        """One word for the list: active, trial-ended, suspended or terminated."""
        if self.tenant.standing == "active" and trial_over(self.tenant):
            return "trial-ended"
        return self.tenant.standing

    @property
    def trial_days_left(self) -> int | None:
        end = self.tenant.trial_ends_on
        if self.tenant.plan != "trial" or end is None:
            return None
        return (end - today_utc()).days + 1  # the end date is the trial's last day

    def as_json(self) -> dict[str, object]:
        t = self.tenant
        return {
            "id": t.id,
            "name": t.name,
            "display_name": t.display_name,
            "domains": self.domains,
            "plan": t.plan,
            "standing": t.standing,
            "state": self.state,
            "trial_ends_on": t.trial_ends_on.isoformat() if t.trial_ends_on else None,
            "users": self.users,
            "messages_this_month": self.messages_this_month,
            "sealed_this_month": self.sealed_this_month,
            "storage_bytes": self.storage_bytes,
            "created_at": t.created_at,
        }


async def partner_tenant(session: AsyncSession, partner_id: str, ref: str) -> Tenant:
    """The partner's tenant by id or name; NotFound for anyone else's."""
    stmt = select(Tenant).where(
        Tenant.partner_id == partner_id, or_(Tenant.id == ref[:200], Tenant.name == ref[:200])
    )
    tenant = (await session.execute(stmt)).scalars().first()
    if tenant is None:
        raise NotFound("no such tenant")
    return tenant


async def summaries(
    session: AsyncSession, partner_id: str, only: str | None = None
) -> list[TenantSummary]:
    """Every tenant of the partner (or the one with id ``only``), with this month's figures."""
    stmt = select(Tenant).where(Tenant.partner_id == partner_id).order_by(Tenant.name)
    if only is not None:
        stmt = stmt.where(Tenant.id == only)
    tenants = list((await session.execute(stmt)).scalars())
    ids = [t.id for t in tenants]
    if not ids:
        return []
    since = month_start()

    async def grouped(query: object) -> dict[str, int]:
        rows = (await session.execute(query)).all()  # type: ignore[call-overload]
        return {tid: int(n or 0) for tid, n in rows}

    domains: dict[str, list[str]] = {}
    for tid, domain in (
        await session.execute(
            select(TenantDomain.tenant_id, TenantDomain.domain)
            .where(TenantDomain.tenant_id.in_(ids))
            .order_by(TenantDomain.domain)
        )
    ).all():
        domains.setdefault(tid, []).append(domain)
    users = await grouped(
        select(User.tenant_id, func.count()).where(User.tenant_id.in_(ids)).group_by(User.tenant_id)
    )
    messages = await grouped(
        select(Message.tenant_id, func.count())
        .where(Message.tenant_id.in_(ids), Message.received_at >= since)
        .group_by(Message.tenant_id)
    )
    sealed = await grouped(
        select(Message.tenant_id, func.count(func.distinct(Message.id)))
        .join(MessageRecipient, MessageRecipient.message_id == Message.id)
        .where(
            Message.tenant_id.in_(ids),
            Message.received_at >= since,
            MessageRecipient.disposition.in_(SEALED),
        )
        .group_by(Message.tenant_id)
    )
    storage = await grouped(
        select(SealedObject.tenant_id, func.sum(SealedObject.size))
        .where(SealedObject.tenant_id.in_(ids), SealedObject.destroyed_at.is_(None))
        .group_by(SealedObject.tenant_id)
    )
    return [
        TenantSummary(
            t,
            domains.get(t.id, []),
            users.get(t.id, 0),
            messages.get(t.id, 0),
            sealed.get(t.id, 0),
            storage.get(t.id, 0),
        )
        for t in tenants
    ]


def trial_end_default(days: int = 30) -> datetime.date:
    return today_utc() + datetime.timedelta(days=days)
