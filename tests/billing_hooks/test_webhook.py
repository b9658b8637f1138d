"""POST /billing/webhook over HTTP (the portal app through httpx's transport): signatures,
exactly-once, out-of-order events. Storage checked in database rows, on SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from starlette.testclient import TestClient

from billing_hooks import events
from billing_hooks.models import BillingEvent, Invoice, OutboundWebhook, PaymentMethod
from billing_hooks.signing import signature
from core.models import AccountContact, BillingAccount, Tenant
from core.services import Services
from portal.app import create_app
from tests.billing_hooks.conftest import SECRET, Billing, billing_settings, event

TABLES = (BillingAccount, AccountContact, Invoice, PaymentMethod, BillingEvent, OutboundWebhook)


def counts(b: Billing) -> dict[str, int]:
    async def q(s: Any) -> dict[str, int]:
        return {
            t.__tablename__: (await s.execute(select(func.count()).select_from(t))).scalar_one()
            for t in TABLES
        }

    return b.query(q)


def test_unset_secret_refuses_everything(tmp_path: Path, db_url: str) -> None:
    settings = billing_settings(tmp_path, db_url, billing_webhook_secret="")
    services = Services.open(settings)
    with TestClient(create_app(settings, services), base_url="https://testserver") as client:
        body = event("evt_1", "account.created", account="acct_1")
        r = client.post("/billing/webhook", content=body, headers={"Sealmail-Signature": "x"})
        assert r.status_code == 503
        assert "billing_webhook_secret" in r.json()["error"]
        client.portal.call(services.close)


def test_bad_signatures_change_nothing(billing: Billing) -> None:
    tenant_id = billing.tenant("Acme", "acme.example")
    body = event(
        "evt_a", "account.created", account="acct_1", kind="tenant", tenant=tenant_id, name="Acme"
    )
    before = counts(billing)
    now = int(time.time())
    tampered = bytearray(body)
    tampered[body.index(b"Acme")] = ord("B")  # one byte of the body changed
    cases = {
        "missing": billing.post(body, header=""),
        "wrong secret": billing.post(body, secret="whsec_someone_else"),
        "one byte changed": billing.post(
            bytes(tampered), header=f"t={now},v1={signature(SECRET, now, body)}"
        ),
        "301 s old": billing.post(body, at=now - 301),
        # taken afresh and with room: the cases before it may take seconds on a loaded
        # machine (with two test workers), which brought a "301 s ahead" inside the 300 s
        "330 s ahead": billing.post(body, at=int(time.time()) + 330),
        "garbage header": billing.post(body, header="v1=abc"),
        "no v1": billing.post(body, header=f"t={now}"),
    }
    for name, r in cases.items():
        assert r.status_code == 401, (name, r.text)
        assert r.json()["error"], name
    assert counts(billing) == before
    # the same body, properly signed (and 295 s old, taken afresh: the cases above may
    # have taken seconds on a loaded machine), is applied
    r = billing.post(body, at=int(time.time()) - 295)
    assert r.status_code == 200 and r.json()["status"] == "applied"
    assert counts(billing)["billing_accounts"] == before["billing_accounts"] + 1


def test_rotation_several_v1_values(billing: Billing) -> None:
    body = event("evt_rot", "subscription.created", account="acct_r", plan="paid")
    now = int(time.time())
    header = f"t={now},v1={signature('old-secret', now, body)},v1={signature(SECRET, now, body)}"
    r = billing.post(body, header=header)
    assert r.status_code == 200, r.text


def test_malformed_json_after_valid_signature(billing: Billing) -> None:
    for body in (b"{not json", b"[1, 2]", b'{"type": "invoice.paid"}', b'{"id": "", "type": "x"}'):
        r = billing.post(body)
        assert r.status_code == 400, body
        assert r.headers["content-type"].startswith("application/json")
        assert r.json()["error"]
    assert counts(billing)["billing_events"] == 0


def test_replayed_ten_times_applied_once(billing: Billing) -> None:
    billing.send("evt_sub", "subscription.created", account="acct_1", plan="paid")
    body = event(
        "evt_inv",
        "invoice.created",
        account="acct_1",
        invoice="in_1",
        number="2027-0001",
        amount=4900,
        currency="EUR",
        due_on="2027-03-01",
    )
    answers = [billing.post(body).json()["status"] for _ in range(10)]
    assert answers == ["applied"] + ["already processed"] * 9
    paid = event("evt_paid", "invoice.paid", account="acct_1", invoice="in_1")
    answers = [billing.post(paid).json()["status"] for _ in range(10)]
    assert answers == ["applied"] + ["already processed"] * 9
    c = counts(billing)
    assert (c["billing_events"], c["invoices"], c["billing_accounts"]) == (3, 1, 1)

    async def inv(s: Any) -> Invoice:
        return (await s.execute(select(Invoice))).scalar_one()

    row = billing.query(inv)
    assert (row.status, row.amount_cents, row.currency, row.number) == (
        "paid",
        4900,
        "EUR",
        "2027-0001",
    )


def test_same_event_at_the_same_time_applied_once(billing: Billing) -> None:
    body = event(
        "evt_twin", "invoice.created", account="acct_t", invoice="in_t", due_on="2027-01-01"
    )

    async def twice() -> list[int]:
        results = await asyncio.gather(
            *(events.handle(billing.services.db, billing.settings, body) for _ in range(4))
        )
        return sorted(r.status for r in results)

    assert billing.run(twice) == [200, 200, 200, 200]
    c = counts(billing)
    assert (c["billing_events"], c["invoices"], c["billing_accounts"]) == (1, 1, 1)


def test_out_of_order_events(billing: Billing) -> None:
    partner_id = billing.partner("MSP One")
    # paid before created: the invoice exists, paid
    billing.send("e1", "invoice.paid", account="acct_p", invoice="in_9", paid_at=1_800_000_000)
    billing.send(
        "e2", "invoice.created", account="acct_p", invoice="in_9", amount=1000, due_on="2027-02-01"
    )
    # subscription before the account: the account exists from what the event says
    billing.send(
        "e3", "subscription.created", account="acct_p", plan="trial", trial_ends_on="2027-06-30"
    )
    billing.send(
        "e4",
        "account.created",
        account="acct_p",
        kind="partner",
        partner="MSP One",
        name="MSP One Ltd",
        contacts=[
            {
                "email": "Billing@MSP.example",
                "name": "Bea",
                "phone": "+1 555 0100",
                "role": "billing",
            },
            {"email": "owner@msp.example", "role": "owner"},
        ],
    )
    billing.send(
        "e5", "payment_method.added", account="acct_p", payment_method="pm_2", role="secondary"
    )

    async def state(s: Any) -> tuple[Any, ...]:
        acct = (await s.execute(select(BillingAccount))).scalar_one()
        inv = (await s.execute(select(Invoice))).scalar_one()
        contacts = sorted(
            (c.email, c.role) for c in (await s.execute(select(AccountContact))).scalars()
        )
        pm = (await s.execute(select(PaymentMethod))).scalar_one()
        return acct, inv, contacts, pm

    acct, inv, contacts, pm = billing.query(state)
    assert (acct.kind, acct.partner_id, acct.name) == ("partner", partner_id, "MSP One Ltd")
    assert (acct.plan, acct.trial_ends_on) == ("trial", datetime.date(2027, 6, 30))
    assert (inv.status, inv.due_on, inv.amount_cents) == ("paid", datetime.date(2027, 2, 1), 1000)
    assert inv.paid_on == datetime.date(2027, 1, 15)  # 1_800_000_000 in UTC
    assert contacts == [("billing@msp.example", "billing"), ("owner@msp.example", "owner")]
    assert (pm.role, pm.status) == ("secondary", "active")


def test_unknown_type_acknowledged_and_unknown_tenant_retried(billing: Billing) -> None:
    r = billing.post(event("e_new", "customer.discount_applied", account="acct_x"))
    assert r.status_code == 200 and r.json()["status"] == "ignored"

    async def outcome(s: Any) -> str:
        return (await s.get(BillingEvent, "e_new")).outcome

    assert billing.query(outcome) == "ignored"
    # an account for a tenant sealmail does not have yet: 422, nothing kept, so the billing
    # system's retry after the tenant exists is applied
    body = event("e_acct", "account.created", account="acct_y", kind="tenant", tenant="Later")
    r = billing.post(body)
    assert r.status_code == 422 and "unknown tenant" in r.json()["error"]
    assert counts(billing)["billing_accounts"] == 0
    billing.tenant("Later", "later.example")
    assert billing.post(body).json()["status"] == "applied"

    async def linked(s: Any) -> bool:
        acct = (await s.execute(select(BillingAccount))).scalar_one()
        tenant = await s.get(Tenant, acct.tenant_id)
        return tenant is not None and tenant.name == "Later"

    assert billing.query(linked)


def test_bad_fields_are_400(billing: Billing) -> None:
    cases = [
        event("b1", "subscription.created", account="a", plan="gold"),
        event("b2", "subscription.created", account="a", plan="trial"),  # no end date
        event("b3", "invoice.created", account="a", invoice="i", due_on="1st of May"),
        event("b4", "invoice.created", account="a", invoice="i", due_on="2027-05-01", amount=-5),
        event("b5", "payment_method.added", account="a", payment_method="pm", role="tertiary"),
    ]
    for body in cases:
        r = billing.post(body)
        assert r.status_code == 400, r.text
    assert counts(billing)["billing_events"] == 0


def test_database_down_is_a_json_503(billing: Billing, monkeypatch: Any) -> None:
    from core.errors import TransientError

    async def down(*args: Any, **kwargs: Any) -> None:
        raise TransientError("database unavailable: OperationalError")

    monkeypatch.setattr(events, "handle", down)
    r = billing.post(event("e_down", "invoice.paid", account="a", invoice="i"))
    assert r.status_code == 503 and r.headers["retry-after"] == "30"
    assert r.json()["error"].startswith("temporarily unavailable")


def test_trial_ends_then_converted_to_paid(billing: Billing) -> None:
    from billing_hooks.run import run_day
    from branding.billing_mail import billing_mailer

    tenant_id = billing.tenant("Trialco", "trialco.example")
    billing.send(
        "t1",
        "account.created",
        account="acct_tr",
        kind="tenant",
        tenant=tenant_id,
        contacts=[{"email": "boss@trialco.example", "role": "owner"}],
    )
    billing.send(
        "t2", "subscription.created", account="acct_tr", plan="trial", trial_ends_on="2027-06-30"
    )

    async def day(d: datetime.date) -> list[str]:
        done = await run_day(
            billing.services.db, billing.settings, d, mailer=billing_mailer(billing.services)
        )
        return [a["action"] for a in done]

    assert billing.run(day, datetime.date(2027, 6, 29)) == []
    assert billing.run(day, datetime.date(2027, 6, 30)) == ["service.suspend"]

    async def standing(s: Any) -> tuple[str, str, str]:
        acct = (await s.execute(select(BillingAccount))).scalar_one()
        tenant = await s.get(Tenant, tenant_id)
        return acct.standing, acct.standing_reason, tenant.standing

    assert billing.query(standing) == ("suspended", "trial", "suspended")
    # a payment of some invoice does not lift a trial's end; converting to paid does
    billing.send("t3", "invoice.paid", account="acct_tr", invoice="in_x")
    assert billing.query(standing) == ("suspended", "trial", "suspended")
    billing.send("t4", "subscription.created", account="acct_tr", plan="paid")
    assert billing.query(standing) == ("good", "", "active")

    async def hooks(s: Any) -> list[str]:
        rows = await s.execute(select(OutboundWebhook).order_by(OutboundWebhook.created_at))
        return [w.type for w in rows.scalars()]

    assert billing.query(hooks) == ["service.suspend", "service.resume"]


def test_cancelled_subscription_terminates_and_is_not_dunned(billing: Billing) -> None:
    from billing_hooks.run import run_day

    tenant_id = billing.tenant("Leaving", "leaving.example")
    billing.send("c1", "account.created", account="acct_l", kind="tenant", tenant=tenant_id)
    billing.send("c2", "invoice.created", account="acct_l", invoice="in_l", due_on="2027-03-01")
    billing.send("c3", "subscription.cancelled", account="acct_l")

    async def standing(s: Any) -> tuple[str, str]:
        acct = (await s.execute(select(BillingAccount))).scalar_one()
        tenant = await s.get(Tenant, tenant_id)
        return acct.standing, tenant.standing

    assert billing.query(standing) == ("terminated", "terminated")

    async def day() -> list[dict[str, Any]]:
        return await run_day(billing.services.db, billing.settings, datetime.date(2027, 3, 20))

    assert billing.run(day) == []  # a terminated account is not dunned
    # paying an old invoice does not bring a terminated account back
    billing.send("c4", "invoice.paid", account="acct_l", invoice="in_l")
    assert billing.query(standing) == ("terminated", "terminated")


def test_contact_emails_use_the_one_validator(billing: Billing) -> None:
    """A contact email the one validator (core.addresses) refuses is a 400 naming it, and
    nothing of the event is kept; the billing system is told, not retried."""
    tenant_id = billing.tenant("Acme", "acme.example")
    for n, bad in enumerate(("ann@acme", "a@b@acme.example", "@acme.example", "ann@.example")):
        body = event(
            f"c{n}", "account.created", account="acct_c", kind="tenant", tenant=tenant_id,
            contacts=[{"email": bad, "role": "billing"}],
        )  # fmt: skip
        r = billing.post(body)
        assert r.status_code == 400, r.text
        assert r.json()["error"] == f"invalid contact email {bad!r}"
    assert counts(billing)["account_contacts"] == 0
    good = event(
        "c_ok", "account.created", account="acct_c", kind="tenant", tenant=tenant_id,
        contacts=[{"email": " Ann@Acme.example ", "role": "billing"}],
    )  # fmt: skip
    assert billing.post(good).json()["status"] == "applied"

    async def stored(s: Any) -> list[str]:
        return [c.email for c in (await s.execute(select(AccountContact))).scalars()]

    assert billing.query(stored) == ["ann@acme.example"]
