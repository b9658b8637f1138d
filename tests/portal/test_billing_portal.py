"""A tenant suspended for billing, in the portal (both databases): its admin pages show the
read-only banner and refuse changes with a readable page (the API with a JSON error), its
recipients still open messages already sent to them, and another tenant is unaffected."""

from __future__ import annotations

import datetime

from billing_hooks import enforcement
from billing_hooks.models import Invoice
from core.ids import new_id
from core.models import BillingAccount
from core.services import Services
from tests.portal.conftest import World, csrf_of
from tests.portal.test_admin import _api_key, _rcpt, setup, sign_in

BOB = "bob@partner.example"


async def _bill(services: Services, tenant_id: str, suspend: bool) -> None:
    async with services.db.session() as s:
        account = BillingAccount(
            id=new_id("ba_"), external_id=f"acct_{tenant_id}", kind="tenant", tenant_id=tenant_id
        )
        account.name, account.plan, account.standing = "Acme Inc", "paid", "good"
        s.add(account)
        await s.flush()
        s.add(
            Invoice(
                id=new_id("in_"),
                external_id=f"in_{tenant_id}",
                account_id=account.id,
                number="2027-0099",
                amount_cents=4900,
                currency="USD",
                due_on=datetime.date(2027, 5, 1),
            )
        )
        if suspend:
            await enforcement.suspend(s, account, "billing")
        await s.commit()


async def _resume(services: Services, tenant_id: str) -> None:
    from sqlalchemy import select

    async with services.db.session() as s:
        stmt = select(BillingAccount).where(BillingAccount.tenant_id == tenant_id)
        account = (await s.execute(stmt)).scalar_one()
        await enforcement.resume(s, account)
        await s.commit()


def test_suspended_tenant_is_read_only_and_recipients_still_read(world: World) -> None:
    ids = setup(world)
    sealed = world.seal(ids["a"], recipients=[BOB], text="The figures you asked for.\n")
    key_a = world.run(_api_key, world.services, ids["a"])
    key_b = world.run(_api_key, world.services, ids["b"])
    sign_in(world, "officer@acme.example")
    good = world.client.get("/admin").text
    assert "billing-banner" not in good
    # the billing standing is one click away in good standing too, not only from the banner
    assert '<a href="/admin/billing">Billing</a>' in good
    world.run(_bill, world.services, ids["a"], True)

    overview = world.client.get("/admin")
    assert overview.status_code == 200
    assert 'id="billing-banner"' in overview.text and "read-only" in overview.text
    billing_page = world.client.get("/admin/billing")
    assert billing_page.status_code == 200
    assert "suspended" in billing_page.text and "2027-0099" in billing_page.text
    assert "49.00 USD" in billing_page.text

    # a change from the page: refused with a readable page, nothing changed
    detail = world.client.get(f"/admin/quarantine/{ids['held']}")
    assert detail.status_code == 200  # reading stays open
    r = world.client.post(
        f"/admin/quarantine/{ids['held']}/release",
        data={"csrf": csrf_of(detail.text)},
        follow_redirects=False,
    )
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("text/html")
    assert "Read-only while the account is suspended" in r.text
    assert world.run(_rcpt, world.services, ids["message"]).override == ""
    # ... and from the API: a JSON error
    ha = {"Authorization": f"Bearer {key_a}"}
    assert world.client.get("/api/v1/quarantine", headers=ha).status_code == 200
    r = world.client.post(f"/api/v1/quarantine/{ids['held']}/release", headers=ha)
    assert r.status_code == 403 and "suspended" in r.json()["error"]
    # another tenant is not suspended: its request reaches the handler (404: not its message)
    hb = {"Authorization": f"Bearer {key_b}"}
    assert (
        world.client.post(f"/api/v1/quarantine/{ids['held']}/release", headers=hb).status_code
        == 404
    )

    # the recipient of a message the suspended tenant sent still opens it
    reader = world.new_client()
    world.sign_in(sealed.tokens[BOB], reader)
    page = reader.get(f"/messages/{sealed.message_id}")
    assert page.status_code == 200 and "The figures you asked for." in page.text

    # paid: writable again, no banner
    world.run(_resume, world.services, ids["a"])
    assert "billing-banner" not in world.client.get("/admin").text
    detail = world.client.get(f"/admin/quarantine/{ids['held']}")
    r = world.client.post(
        f"/admin/quarantine/{ids['held']}/release",
        data={"csrf": csrf_of(detail.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert world.run(_rcpt, world.services, ids["message"]).override == "released"


async def _partner_tenant(services: Services) -> str:
    from core.accounts.partners import create_partner
    from core.accounts.tenants import create_tenant, get_tenant
    from core.accounts.users import add_user

    async with services.db.session() as s:
        partner = await create_partner(s, "MSP Two")
        creds = await create_tenant(
            s, services.keyring, "Customer", ["customer.example"], partner=partner.id
        )
        tenant = await get_tenant(s, creds.tenant_id)
        assert tenant is not None
        await add_user(s, tenant, "admin@customer.example", "admin")
        account = BillingAccount(
            id=new_id("ba_"), external_id="acct_msp2", kind="partner", partner_id=partner.id
        )
        account.name, account.plan, account.standing = "MSP Two", "paid", "good"
        s.add(account)
        await s.flush()
        s.add(
            Invoice(
                id=new_id("in_"),
                external_id="in_msp2",
                account_id=account.id,
                number="MSP-INVOICE-77",
                amount_cents=99900,
                due_on=datetime.date(2027, 5, 1),
            )
        )
        await enforcement.suspend(s, account, "billing")
        await s.commit()
        return creds.tenant_id


def test_partners_tenant_sees_no_partner_invoice(world: World) -> None:
    world.run(_partner_tenant, world.services)
    sign_in(world, "admin@customer.example")
    overview = world.client.get("/admin")
    assert 'id="billing-banner"' in overview.text
    assert "service provider manages the billing" in overview.text
    page = world.client.get("/admin/billing")
    assert page.status_code == 200 and 'id="via-partner"' in page.text
    assert "MSP-INVOICE-77" not in page.text and "999.00" not in page.text
