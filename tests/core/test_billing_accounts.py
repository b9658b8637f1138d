"""Which tenant's keys seal the mail sealmail writes to a billing account's contacts
(core/accounts/billing_accounts.py): one answer for the dunning mail and the support mail."""

from __future__ import annotations

from core.accounts.billing_accounts import sealing_tenant_id
from core.accounts.partners import create_partner
from core.accounts.tenants import create_tenant, find_tenant
from core.ids import new_id
from core.models import BillingAccount
from core.services import Services


async def test_sealing_tenant_of_tenant_and_partner_accounts(services: Services) -> None:
    async with services.db.session() as s:
        partner = await create_partner(s, "Reseller One")
        lonely = await create_partner(s, "Reseller Two")
        await s.commit()
    async with services.db.session() as s:
        # created first, but the older one by created_at is the one that seals
        await create_tenant(s, services.keyring, "Newer", ["newer.example"], partner=partner.id)
        await create_tenant(s, services.keyring, "Older", ["older.example"], partner=partner.id)
        await create_tenant(s, services.keyring, "Direct", ["direct.example"])
        await s.commit()
    async with services.db.session() as s:
        newer, older = await find_tenant(s, "Newer"), await find_tenant(s, "Older")
        direct = await find_tenant(s, "Direct")
        newer.created_at, older.created_at = 2000.0, 1000.0
        accounts = {
            name: BillingAccount(id=new_id("ba_"), external_id=name, kind=kind, **owner)
            for name, kind, owner in (
                ("own", "tenant", {"tenant_id": direct.id}),
                ("partner", "partner", {"partner_id": partner.id}),
                ("empty", "partner", {"partner_id": lonely.id}),
            )
        }
        s.add_all(accounts.values())
        await s.commit()
    async with services.db.session() as s:
        got = {
            name: await sealing_tenant_id(s, await s.get(BillingAccount, a.id))  # type: ignore[arg-type]
            for name, a in accounts.items()
        }
    assert got == {"own": direct.id, "partner": older.id, "empty": None}
