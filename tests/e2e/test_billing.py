"""Billing end to end against ``sealmail serve``: an unpaid invoice suspends a tenant (signed
webhooks to the running portal, then ``sealmail billing run --date`` to the end of the
15th); its next message gets 451 and waits at the sender; an ``invoice.paid`` webhook
reinstates the tenant at once and the same message is then accepted and delivered. The
billing contact's emails go out through the outbox to the relay."""

from __future__ import annotations

import json
import smtplib
import time
import urllib.error
import urllib.request

from billing_hooks.signing import sign
from tests.e2e.conftest import Product
from tests.e2e.mail import make_message, parse, send
from tests.helpers.smtp_sink import SmtpSink

SECRET = "whsec_e2e_" + "7" * 20


def _webhook(product: Product, event_id: str, type_: str, **data: object) -> dict[str, object]:
    body = json.dumps(
        {"id": event_id, "type": type_, "created": int(time.time()), "data": data}
    ).encode()
    req = urllib.request.Request(  # noqa: S310 - loopback test server
        f"{product.portal_url}/billing/webhook",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Sealmail-Signature": sign(SECRET, body)},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
            return json.loads(resp.read())
    except urllib.error.HTTPError as err:
        raise AssertionError(f"{type_}: HTTP {err.code} {err.read()!r}") from None


def test_unpaid_invoice_suspends_and_payment_reinstates(product: Product, sink: SmtpSink) -> None:
    product.init(billing_webhook_secret=SECRET, billing_pay_url="https://pay.example.test/acme")
    tenant = product.create_tenant("Acme", "acme.example")
    product.start()

    assert (
        _webhook(
            product,
            "evt_1",
            "account.created",
            account="acct_acme",
            kind="tenant",
            tenant="Acme",
            name="Acme Inc",
            contacts=[{"email": "ap@acme.example", "role": "billing"}],
        )["status"]
        == "applied"
    )
    _webhook(
        product,
        "evt_2",
        "invoice.created",
        account="acct_acme",
        invoice="in_1",
        number="2027-0007",
        amount=9900,
        currency="USD",
        due_on="2027-05-01",
    )
    creds = (tenant["smtp_username"], tenant["smtp_password"])

    # the 14th is over: late, but not suspended yet
    out = product.cli("billing", "run", "--date", "2027-05-14", "--json").stdout
    assert [a["action"] for a in json.loads(out)["actions"]] == [
        "ticket.open",
        "contact.phone_followup",
        "fee.late",
    ]
    first = make_message("Invoice run", "Still sending on the 14th.", to="bob@recipient.test")
    assert send(product.smtp_port, first, *creds).startswith("2.0.0 queued as")
    sink.wait_for(lambda m: "bob@recipient.test" in m.rcpt_tos)

    # the 15th is over: suspended
    out = product.cli("billing", "run", "--date", "2027-05-15", "--json").stdout
    assert [a["action"] for a in json.loads(out)["actions"]] == ["service.suspend"]
    waiting = make_message("Order 42", "This one has to wait.", to="carol@recipient.test")
    try:
        send(product.smtp_port, waiting, *creds)
        raise AssertionError("a suspended tenant's message was accepted")
    except smtplib.SMTPResponseException as err:
        assert err.smtp_code == 451, err
        assert b"4.7.1" in err.smtp_error
    assert not any("carol@recipient.test" in m.rcpt_tos for m in sink.messages)

    # paid: reinstated at once, and the sender's retry of the same message goes through
    assert (
        _webhook(product, "evt_3", "invoice.paid", account="acct_acme", invoice="in_1")["status"]
        == "applied"
    )
    assert send(product.smtp_port, waiting, *creds).startswith("2.0.0 queued as")
    got = sink.wait_for(lambda m: "carol@recipient.test" in m.rcpt_tos)[0]
    assert b"This one has to wait." in got.data

    # the billing contact was told, through the outbox and the relay
    def subjects() -> list[str]:
        return [
            str(parse(m.data)["Subject"]) for m in sink.messages if "ap@acme.example" in m.rcpt_tos
        ]

    sink.wait_for(lambda m: "ap@acme.example" in m.rcpt_tos, count=4)
    assert sorted(subjects()) == [  # delivery order is not guaranteed
        "Invoice 2027-0007 is unpaid",
        "Late fee added: invoice 2027-0007",
        "Service reinstated: Acme Inc",
        "Service suspended: Acme Inc",
    ]
    assert product.stop() == 0
