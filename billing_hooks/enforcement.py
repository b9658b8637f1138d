"""What a billing standing means for tenants: an account's suspension suspends its tenants
(a partner's: all of them) through :func:`core.accounts.tenants.set_standing`, which the gateway
reads (451 4.7.1 while suspended, 550 5.7.1 once terminated). Reinstatement resumes only
the tenants that billing itself suspended, never one an operator suspended by hand."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.accounts.tenants import set_standing
from core.audit import audit
from core.models import AuditEvent, BillingAccount, Tenant, now

ACTOR = "billing"


async def tenants_of(session: AsyncSession, account: BillingAccount) -> list[Tenant]:
    """The tenants an account pays for."""
    if account.kind == "partner" and account.partner_id:
        stmt = select(Tenant).where(Tenant.partner_id == account.partner_id).order_by(Tenant.id)
        return list((await session.execute(stmt)).scalars().all())
    if account.tenant_id:
        tenant = await session.get(Tenant, account.tenant_id)
        return [tenant] if tenant is not None else []
    return []


async def suspended_by_billing(session: AsyncSession, tenant_id: str) -> bool:
    stmt = (
        select(AuditEvent.actor)
        .where(AuditEvent.tenant_id == tenant_id, AuditEvent.action == "tenant.suspended")
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar() == ACTOR


async def suspend(session: AsyncSession, account: BillingAccount, reason: str) -> list[str]:
    """Suspend the account and its active tenants; the ids of the tenants suspended."""
    account.standing = "suspended"
    account.standing_reason = reason
    account.updated_at = now()
    done = []
    for tenant in await tenants_of(session, account):
        if tenant.standing == "active":
            await set_standing(session, tenant, "suspended", ACTOR)
            done.append(tenant.id)
    await audit(session, None, ACTOR, "billing.suspend", account.id, reason=reason, tenants=done)
    return done


async def resume(session: AsyncSession, account: BillingAccount) -> list[str]:
    """Back to good standing; tenants that billing suspended are active again."""
    account.standing = "good"
    account.standing_reason = ""
    account.updated_at = now()
    done = []
    for tenant in await tenants_of(session, account):
        if tenant.standing == "suspended" and await suspended_by_billing(session, tenant.id):
            await set_standing(session, tenant, "active", ACTOR)
            done.append(tenant.id)
    await audit(session, None, ACTOR, "billing.resume", account.id, tenants=done)
    return done


async def terminate(session: AsyncSession, account: BillingAccount, reason: str) -> list[str]:
    """Terminated: the gateway refuses the tenants' mail (550); nothing is deleted here —
    archived data stays for its retention period and the archive sweep removes it."""
    account.standing = "terminated"
    account.standing_reason = reason
    account.updated_at = now()
    done = []
    for tenant in await tenants_of(session, account):
        if tenant.standing != "terminated":
            await set_standing(session, tenant, "terminated", ACTOR)
            done.append(tenant.id)
    await audit(session, None, ACTOR, "billing.terminate", account.id, reason=reason, tenants=done)
    return done


async def apply_standing(session: AsyncSession, account: BillingAccount) -> list[str]:
    """Give the account's tenants its standing after they were linked to it (an
    ``account.created`` arriving after the events that suspended or terminated the account):
    the ids of the tenants changed. A good standing changes nothing here."""
    target = {"suspended": "suspended", "terminated": "terminated"}.get(account.standing)
    if target is None:
        return []
    await session.flush()
    done = []
    for tenant in await tenants_of(session, account):
        if tenant.standing == "active" or (
            target == "terminated" and tenant.standing == "suspended"
        ):
            await set_standing(session, tenant, target, ACTOR)
            done.append(tenant.id)
    if done:
        await audit(
            session, None, ACTOR, f"billing.{account.standing}.linked", account.id, tenants=done
        )
    return done


async def suspend_new_tenants(session: AsyncSession, account: BillingAccount) -> list[str]:
    """A tenant created for a suspended account after it was suspended (``sealmail tenant
    create --partner P`` while P's account is unpaid) is suspended too: the ids of those
    suspended now. Only tenants whose standing never changed since they were created: a
    tenant an operator resumed by hand while the account is suspended stays as it is."""
    if account.standing != "suspended":
        return []
    changes = ("tenant.active", "tenant.suspended", "tenant.terminated")
    done = []
    for tenant in await tenants_of(session, account):
        if tenant.standing != "active":
            continue
        stmt = (
            select(AuditEvent.id)
            .where(AuditEvent.tenant_id == tenant.id, AuditEvent.action.in_(changes))
            .limit(1)
        )
        if (await session.execute(stmt)).scalar() is None:
            await set_standing(session, tenant, "suspended", ACTOR)
            done.append(tenant.id)
    if done:
        await audit(session, None, ACTOR, "billing.suspend.new_tenants", account.id, tenants=done)
    return done


async def standing_for_new_tenant(session: AsyncSession, tenant: Tenant) -> str | None:
    """A tenant just created for a partner whose account is suspended or terminated gets
    that standing at once (instead of sending mail until the next billing run): the new
    standing, or ``None`` when the partner is in good standing or has no account."""
    if not tenant.partner_id:
        return None
    account = (
        await session.execute(
            select(BillingAccount).where(
                BillingAccount.kind == "partner", BillingAccount.partner_id == tenant.partner_id
            )
        )
    ).scalar_one_or_none()
    if account is None or account.standing not in ("suspended", "terminated"):
        return None
    await session.flush()
    await set_standing(session, tenant, account.standing, ACTOR)
    await audit(
        session, None, ACTOR, f"billing.{account.standing}.new_tenant", account.id,
        tenants=[tenant.id],
    )  # fmt: skip
    return account.standing
