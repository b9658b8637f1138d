"""DKIM end to end: the records come from ``sealmail tenant dns``, are published in a DNS
server on loopback (what ``dns_resolver`` asks), the key is switched on with ``sealmail
tenant dkim --activate``; a [secure] message sent by SMTP to ``sealmail serve`` gives a
notification, captured at the sink, that dkimpy verifies with ``d=`` the tenant's domain."""

from __future__ import annotations

import email
import email.policy
import json
from collections.abc import Iterator

import dkim
import pytest

from tests.e2e.conftest import Product
from tests.e2e.mail import make_message, send
from tests.helpers.dns_stub import DnsStub, dns_stub
from tests.helpers.smtp_sink import SmtpSink

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def stub() -> Iterator[DnsStub]:
    with dns_stub() as s:
        yield s


def _records(product: Product) -> dict[str, dict]:
    data = json.loads(product.cli("tenant", "dns", "Acme", "--json").stdout)
    return {r["kind"]: r for r in data["records"]}


def test_the_notification_verifies_for_the_tenants_domain(
    product: Product, sink: SmtpSink, stub: DnsStub
) -> None:
    product.init(dns_resolver=stub.address, smtp_hostname="gw.operator.example")
    tenant = product.create_tenant("Acme", "acme.example")
    product.cli("tenant", "update", "Acme", "--notification-from", "notices@acme.example")
    refused = product.cli(
        "tenant", "update", "Acme", "--notification-from", "x@evil.example", check=False
    )
    assert refused.returncode == 1 and "not in one of the tenant's domains" in refused.stderr

    # no key yet: tenant dns says so, and lists SPF and DMARC as missing
    records = _records(product)
    assert "dkim" not in records and records["spf"]["state"] == "missing"
    made = product.cli("tenant", "dkim", "Acme", "--generate")
    assert "new pending key, publish sm" in made.stdout

    records = _records(product)
    assert records["dkim"]["state"] == "missing" and records["dkim"]["key_state"] == "pending"
    early = product.cli("tenant", "dkim", "Acme", "--activate", check=False)
    assert early.returncode == 1 and early.stderr.count("\n") == 1
    assert "DNS does not show the new key's record yet" in early.stderr

    stub.publish(records["dkim"]["name"], records["dkim"]["value"])
    stub.publish("_dmarc.acme.example", records["dmarc"]["value"])
    records = _records(product)
    assert records["dkim"]["state"] == "ok" and records["dmarc"]["state"] == "ok"
    text = product.cli("tenant", "dns", "Acme").stdout
    assert "[found]" in text and records["dkim"]["name"] in text
    switched = product.cli("tenant", "dkim", "Acme", "--activate")
    assert "now signs with " + records["dkim"]["name"] in switched.stdout

    product.start()
    msg = make_message("[secure] Figures", "Dear Bob,\n\nthe figures.\n\nAlice")
    send(product.smtp_port, msg, tenant["smtp_username"], tenant["smtp_password"])
    note = sink.wait_for(lambda m: "bob@recipient.test" in m.rcpt_tos)[0]
    parsed = email.message_from_bytes(note.data, policy=email.policy.default)
    assert parsed["From"].addresses[0].addr_spec == "notices@acme.example"
    tags = dict(
        part.split("=", 1)
        for part in "".join(str(parsed["DKIM-Signature"]).split()).split(";")
        if part
    )
    assert tags["d"] == "acme.example"
    assert tags["s"] == records["dkim"]["selector"]
    assert dkim.verify(note.data, dnsfunc=stub.dnsfunc)
    # and a changed notice does not verify: the check can fail
    assert not dkim.verify(note.data.replace(b"Subject:", b"Subject: x", 1), dnsfunc=stub.dnsfunc)


def test_cli_errors(product: Product) -> None:
    unknown = product.cli("tenant", "dns", "Nobody", check=False)
    assert unknown.returncode == 1 and unknown.stderr.strip() == "sealmail: no tenant 'Nobody'"
    usage = product.cli("tenant", "dkim", "Nobody", "--force", check=False)
    assert usage.returncode == 2
