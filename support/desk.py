"""What the support desk sees: which accounts a desk may look at (:class:`Scope`: the
operator's desk sees all, an MSP's desk only its partner's), the contact records of an
address (:func:`contacts_for`, also what a contact manages at ``/pin``) and the account a
caller with no contact record names (:func:`find_named`)."""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import AccountContact, BillingAccount, Partner, Tenant, TenantDomain
from support.models import SupportPin


@dataclasses.dataclass(frozen=True)
class Scope:
    """The accounts a desk may look at: all (the operator's desk) or one partner's."""

    partner_id: str | None = None

    def account_filter(self) -> Any:
        if self.partner_id is None:
            return true()
        own_tenants = select(Tenant.id).where(Tenant.partner_id == self.partner_id)
        return or_(
            BillingAccount.partner_id == self.partner_id,
            BillingAccount.tenant_id.in_(own_tenants),
        )


OPERATOR = Scope(None)


@dataclasses.dataclass(frozen=True)
class ContactView:
    contact: AccountContact
    account: BillingAccount
    tenant: Tenant | None
    partner: Partner | None
    pin: SupportPin | None

    @property
    def account_name(self) -> str:
        if self.account.name:
            return self.account.name
        if self.tenant is not None:
            return self.tenant.display_name or self.tenant.name
        return self.partner.name if self.partner is not None else self.account.external_id

    @property
    def standing(self) -> str:
        """The account's standing; a tenant account whose tenant an operator suspended or
        terminated is not in good standing either."""
        if self.account.standing == "good" and self.tenant is not None:
            if self.tenant.standing == "suspended":
                return "suspended"
            if self.tenant.standing == "terminated":
                return "terminated"
        return self.account.standing

    @property
    def pin_state(self) -> str:
        if self.pin is None:
            return "not set"
        return "locked" if self.pin.locked_at is not None else "set"

    def summary(self) -> dict[str, Any]:
        return {
            "contact_id": self.contact.id,
            "account_id": self.account.id,
            "account": self.account_name,
            "kind": self.account.kind,
            "role": self.contact.role,
            "standing": self.standing,
            "delinquent": bool(self.account.delinquent),
            "pin": self.pin_state,
        }


async def contacts_for(
    session: AsyncSession, email: str, scope: Scope = OPERATOR, account_id: str | None = None
) -> list[ContactView]:
    """Every contact record of ``email`` the desk may see, oldest first."""
    address = email.strip().lower()
    stmt = (
        select(AccountContact, BillingAccount)
        .join(BillingAccount, BillingAccount.id == AccountContact.account_id)
        .where(func.lower(AccountContact.email) == address, scope.account_filter())
        .order_by(AccountContact.created_at, AccountContact.id)
    )
    if account_id:
        stmt = stmt.where(BillingAccount.id == account_id)
    out = []
    for contact, account in (await session.execute(stmt)).all():
        tenant = await session.get(Tenant, account.tenant_id) if account.tenant_id else None
        partner = await session.get(Partner, account.partner_id) if account.partner_id else None
        pin = await session.get(SupportPin, contact.id)
        out.append(ContactView(contact, account, tenant, partner, pin))
    return out


# --- a caller with no contact record ---------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Named:
    """The account a caller named (by tenant name or one of its domains), if the desk may
    see it."""

    tenant: Tenant
    partner: Partner | None
    account: BillingAccount | None

    @property
    def name(self) -> str:
        if self.account is not None and self.account.name:
            return self.account.name
        return self.tenant.display_name or self.tenant.name


async def find_named(session: AsyncSession, text: str, scope: Scope = OPERATOR) -> Named | None:
    """The tenant a caller names, by name or domain, within ``scope``; None if none is."""
    ref = text.strip()
    if not ref:
        return None
    # not core.addresses.domain_of, which would also drop a space after the @ of what is typed
    domain = ref.lower().rstrip(".").rpartition("@")[2]
    in_domain = select(TenantDomain.tenant_id).where(TenantDomain.domain == domain)
    stmt = select(Tenant).where(
        or_(func.lower(Tenant.name) == ref.lower(), Tenant.id.in_(in_domain))
    )
    if scope.partner_id is not None:
        stmt = stmt.where(Tenant.partner_id == scope.partner_id)
    tenant = (await session.execute(stmt.limit(1))).scalar()
    if tenant is None:
        return None
    partner = await session.get(Partner, tenant.partner_id) if tenant.partner_id else None
    stmt2 = select(BillingAccount).where(BillingAccount.tenant_id == tenant.id).limit(1)
    account = (await session.execute(stmt2)).scalar()
    if account is None and partner is not None:
        stmt3 = select(BillingAccount).where(BillingAccount.partner_id == partner.id).limit(1)
        account = (await session.execute(stmt3)).scalar()
    return Named(tenant, partner, account)
