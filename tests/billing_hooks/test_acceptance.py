"""Defects found by the product owner's acceptance run of issue 6 (driving ``sealmail serve``
with signed webhooks and ``sealmail billing run``), each pinned by a test on both
databases."""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import select

from billing_hooks.run import run_day
from core.models import BillingAccount, Tenant
from tests.billing_hooks.conftest import Billing, event


def _standing(tenant_id: str) -> Any:
    async def get(s: Any) -> tuple[str, str, str]:
        acct = (await s.execute(select(BillingAccount))).scalar_one()
        tenant = await s.get(Tenant, tenant_id)
        return acct.standing, acct.standing_reason, tenant.standing

    return get


def _suspend_by_unpaid_invoice(billing: Billing, tenant_id: str) -> None:
    due = datetime.date.today() - datetime.timedelta(days=30)
    billing.send("v1", "account.created", account="acct_v", kind="tenant", tenant=tenant_id)
    billing.send(
        "v2",
        "invoice.created",
        account="acct_v",
        invoice="in_v",
        number="V-1",
        amount=4900,
        currency="USD",
        due_on=due.isoformat(),
    )

    async def day() -> list[str]:
        done = await run_day(
            billing.services.db, billing.settings, due + datetime.timedelta(days=15)
        )
        return [a["action"] for a in done]

    assert "service.suspend" in billing.run(day)
    assert billing.query(_standing(tenant_id)) == ("suspended", "billing", "suspended")


def test_voiding_the_overdue_invoice_reinstates_at_once(billing: Billing) -> None:
    """Found live: the billing system voided (credited) the invoice that suspended a tenant;
    the tenant stayed suspended until the next day's run had judged today (up to 48 h of
    mail refused with 451)."""
    tenant_id = billing.tenant("Voidco", "voidco.example")
    _suspend_by_unpaid_invoice(billing, tenant_id)
    due = datetime.date.today() - datetime.timedelta(days=30)
    billing.send(
        "v3",
        "invoice.created",
        account="acct_v",
        invoice="in_v",
        number="V-1",
        amount=4900,
        currency="USD",
        due_on=due.isoformat(),
        status="void",
    )
    assert billing.query(_standing(tenant_id)) == ("good", "", "active")


def test_a_later_due_date_reinstates_at_once(billing: Billing) -> None:
    """The billing system moved the overdue invoice's due date (a payment plan agreed on the
    phone): nothing is overdue any more, so the service is back at once."""
    tenant_id = billing.tenant("Planco", "planco.example")
    _suspend_by_unpaid_invoice(billing, tenant_id)
    later = datetime.date.today() + datetime.timedelta(days=20)
    billing.send(
        "v3",
        "invoice.created",
        account="acct_v",
        invoice="in_v",
        number="V-1",
        amount=4900,
        currency="USD",
        due_on=later.isoformat(),
    )
    assert billing.query(_standing(tenant_id)) == ("good", "", "active")


def test_a_new_invoice_does_not_reinstate(billing: Billing) -> None:
    """The reinstatement check on invoice.created must not lift a suspension while the
    overdue invoice is still open."""
    tenant_id = billing.tenant("Stillco", "stillco.example")
    _suspend_by_unpaid_invoice(billing, tenant_id)
    billing.send(
        "v3",
        "invoice.created",
        account="acct_v",
        invoice="in_v2",
        amount=100,
        due_on=(datetime.date.today() + datetime.timedelta(days=5)).isoformat(),
    )
    assert billing.query(_standing(tenant_id)) == ("suspended", "billing", "suspended")


def test_subscription_plan_is_the_tenants_plan(billing: Billing) -> None:
    """Found live: a trial tenant converted to paid by ``subscription.created`` still showed
    plan ``trial`` in ``sealmail tenant list``/``show`` (and an NFR licence showed ``paid``)."""
    tenant_id = billing.tenant("Planned", "planned.example")
    partner_id = billing.partner("MSP Plan")
    under = billing.tenant("Under", "under.example", partner="MSP Plan")
    billing.send("p1", "account.created", account="acct_pl", kind="tenant", tenant=tenant_id)
    billing.send(
        "p2", "subscription.created", account="acct_pl", plan="trial", trial_ends_on="2099-01-31"
    )

    async def plans(s: Any) -> tuple[str, str]:
        return (await s.get(Tenant, tenant_id)).plan, (await s.get(Tenant, under)).plan

    assert billing.query(plans) == ("trial", "paid")
    billing.send("p3", "subscription.created", account="acct_pl", plan="paid")
    assert billing.query(plans) == ("paid", "paid")
    billing.send("p4", "subscription.created", account="acct_pl", plan="nfr")
    assert billing.query(plans) == ("nfr", "paid")
    # a partner's own subscription is the partner's plan, not its customers'
    billing.send("p5", "account.created", account="acct_msp", kind="partner", partner=partner_id)
    billing.send("p6", "subscription.created", account="acct_msp", plan="nfr")
    assert billing.query(plans) == ("nfr", "paid")


def test_account_created_after_its_cancellation_terminates_the_tenant(billing: Billing) -> None:
    """Out of order: ``subscription.cancelled`` arrived before the ``account.created`` that
    names the tenant; the account was terminated but its tenant, linked afterwards, went on
    sending. Linking a tenant (or a partner's tenants) to an account applies the account's
    standing to them."""
    tenant_id = billing.tenant("Quickquit", "quickquit.example")
    billing.send("q1", "subscription.cancelled", account="acct_q")
    billing.send("q2", "account.created", account="acct_q", kind="tenant", tenant=tenant_id)
    assert billing.query(_standing(tenant_id)) == ("terminated", "cancelled", "terminated")


def test_partner_linked_after_its_suspension_suspends_its_tenants(billing: Billing) -> None:
    partner_id = billing.partner("MSP Late")
    one = billing.tenant("Late One", "late-one.example", partner="MSP Late")
    two = billing.tenant("Late Two", "late-two.example", partner="MSP Late")
    due = datetime.date.today() - datetime.timedelta(days=30)
    billing.send("s1", "invoice.created", account="acct_s", invoice="in_s", due_on=due.isoformat())

    async def day() -> list[str]:
        d = due + datetime.timedelta(days=15)
        return [a["action"] for a in await run_day(billing.services.db, billing.settings, d)]

    assert "service.suspend" in billing.run(day)
    billing.send("s2", "account.created", account="acct_s", kind="partner", partner=partner_id)

    async def tenants(s: Any) -> list[str]:
        return [(await s.get(Tenant, t)).standing for t in (one, two)]

    assert billing.query(tenants) == ["suspended", "suspended"]
    billing.send("s3", "invoice.paid", account="acct_s", invoice="in_s")
    assert billing.query(tenants) == ["active", "active"]


def test_a_tenant_created_under_a_suspended_partner_is_suspended_by_the_run(
    billing: Billing,
) -> None:
    """Found live: while an MSP's account was suspended, a tenant created for it afterwards
    (``sealmail tenant create --partner``) sent mail normally. The next billing run suspends
    it with the others, and the payment resumes it with them; a tenant the operator resumed
    by hand is left alone."""
    from core.accounts.tenants import set_standing

    partner_id = billing.partner("MSP Grow")
    old = billing.tenant("Grow Old", "grow-old.example", partner="MSP Grow")
    billing.send("g1", "account.created", account="acct_g", kind="partner", partner=partner_id)
    due = datetime.date.today() - datetime.timedelta(days=30)
    billing.send("g2", "invoice.created", account="acct_g", invoice="in_g", due_on=due.isoformat())

    async def day(d: datetime.date) -> list[str]:
        return [a["action"] for a in await run_day(billing.services.db, billing.settings, d)]

    assert "service.suspend" in billing.run(day, due + datetime.timedelta(days=15))
    new = billing.tenant("Grow New", "grow-new.example", partner="MSP Grow")

    async def resume_by_hand(s: Any) -> None:
        await set_standing(s, await s.get(Tenant, old), "active", "cli")
        await s.commit()

    billing.query(resume_by_hand)

    async def standings(s: Any) -> list[str]:
        return [(await s.get(Tenant, t)).standing for t in (old, new)]

    assert billing.query(standings) == ["active", "active"]
    assert billing.run(day, due + datetime.timedelta(days=16)) == []
    assert billing.query(standings) == ["active", "suspended"]
    billing.send("g3", "invoice.paid", account="acct_g", invoice="in_g")
    assert billing.query(standings) == ["active", "active"]


def test_signed_but_too_deeply_nested_body_is_a_400(billing: Billing) -> None:
    """Found by fuzzing the running portal: a signed body nested 100,000 levels deep made
    the JSON parser overflow and the webhook answer a 500 HTML page."""
    for body in (
        b"[" * 100_000 + b"]" * 100_000,
        b'{"id": "evt_deep", "type": "x", "data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ):
        r = billing.post(body)
        assert r.status_code == 400
        assert r.json() == {"error": "body is not valid JSON"}


def test_timestamps_out_of_range_are_400(billing: Billing) -> None:
    """Found by fuzzing the running portal: a signed event whose ``created`` or ``paid_at``
    could not be turned into a day (1e20, -1e18, NaN, Infinity) answered a 500 page, or a
    503 that the billing system would retry without end."""
    bodies = [
        event("x1", "invoice.paid", account="acct_t", invoice="in_t").replace(
            b'"created": ', b'"created": 1e20, "was": '
        ),
        event("x2", "invoice.paid", account="acct_t", invoice="in_t", paid_at=-(10**18)),
        event("x3", "invoice.paid", account="acct_t", invoice="in_t", paid_at=1e300),
        b'{"id": "x4", "type": "invoice.paid", "created": NaN, "data": {"account": "a"}}',
        b'{"id": "x5", "type": "invoice.paid", "created": 1800000000, '
        b'"data": {"account": "acct_t", "invoice": "in_t", "paid_at": Infinity}}',
    ]
    for body in bodies:
        r = billing.post(body)
        assert r.status_code == 400, (body, r.status_code, r.text)
        assert "unix seconds" in r.json()["error"]

    async def nothing_kept(s: Any) -> int:
        return len((await s.execute(select(BillingAccount))).scalars().all())

    assert billing.query(nothing_kept) == 0


def test_a_date_at_the_calendars_end_is_refused_and_never_stops_a_run(billing: Billing) -> None:
    """Found live: one ``invoice.created`` with ``due_on`` 9999-12-30 was accepted, and from
    then on every ``sealmail billing run`` died with an OverflowError traceback, judging no
    account after it. Such dates are now refused (400); and an account whose data still
    breaks the engine is logged and skipped while the others are judged."""
    from billing_hooks.models import Invoice
    from core.errors import TransientError
    from core.ids import new_id

    r = billing.post(
        event("f1", "invoice.created", account="acct_f", invoice="in_f", due_on="9999-12-30")
    )
    assert r.status_code == 400 and "between 1970 and 9000" in r.json()["error"]
    r = billing.post(
        event("f0", "invoice.created", account="acct_f", invoice="in_f", due_on="0001-01-01")
    )
    assert r.status_code == 400 and "between 1970 and 9000" in r.json()["error"]
    due = datetime.date.today() - datetime.timedelta(days=30)
    for n in (1, 2):
        billing.send(
            f"f{n + 1}",
            "invoice.created",
            account=f"acct_{n}",
            invoice=f"in_{n}",
            due_on=due.isoformat(),
        )

    async def break_the_first(s: Any) -> None:  # as an older version may have stored it
        first = (
            (await s.execute(select(BillingAccount).order_by(BillingAccount.id))).scalars().first()
        )
        s.add(
            Invoice(
                id=new_id("in_"),
                external_id="in_bad",
                account_id=first.id,
                due_on=datetime.date(9999, 12, 30),
            )
        )
        await s.commit()

    billing.query(break_the_first)

    async def day() -> str:
        try:
            await run_day(billing.services.db, billing.settings, due + datetime.timedelta(days=1))
        except TransientError as err:
            return str(err)
        return "no error"

    assert "1 account(s) not run" in billing.run(day)

    async def standings(s: Any) -> list[str]:
        from billing_hooks.models import DunningAction

        rows = (await s.execute(select(DunningAction))).scalars().all()
        return sorted({a.action for a in rows})

    # the other account's day was judged
    assert billing.query(standings) == ["contact.phone_followup", "ticket.open"]


def test_a_nul_character_in_a_field_is_a_400(billing: Billing) -> None:
    """A NUL in a signed event's text (PostgreSQL cannot store it) is refused with a 400 on
    both databases, never a 500, and nothing is kept."""
    body = event("n1", "account.created", account="acct_n", kind="partner", partner="x\x00y")
    r = billing.post(body)
    assert r.status_code == 400 and "data.partner" in r.json()["error"]
    body = event("n2", "invoice.created", account="acct\x00n", invoice="in_n", due_on="2027-01-01")
    r = billing.post(body)
    assert r.status_code == 400 and "data.account" in r.json()["error"]
    body = event("n3\x00", "invoice.paid", account="acct_n", invoice="in_n")
    r = billing.post(body)
    assert r.status_code == 400

    async def nothing_kept(s: Any) -> int:
        return len((await s.execute(select(BillingAccount))).scalars().all())

    assert billing.query(nothing_kept) == 0
