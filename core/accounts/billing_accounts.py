"""Billing accounts (``core.models.BillingAccount``): which tenant's keys seal the mail that
sealmail writes to an account's contacts (billing notices, support PINs)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import BillingAccount, Tenant


async def sealing_tenant_id(session: AsyncSession, account: BillingAccount) -> str | None:
    """The tenant whose keys seal mail to this account's contacts: the account's own tenant,
    or for a partner account the partner's oldest tenant (None while it has none)."""
    if account.tenant_id:
        return account.tenant_id
    if account.partner_id:
        stmt = (
            select(Tenant.id)
            .where(Tenant.partner_id == account.partner_id)
            .order_by(Tenant.created_at, Tenant.id)
            .limit(1)
        )
        return (await session.execute(stmt)).scalar()
    return None
