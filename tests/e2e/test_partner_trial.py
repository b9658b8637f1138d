"""A trial that ends by itself, against the running product (issue 14, done-when): a partner
admin signs in at /partner with a mailed code and creates a trial whose last day was
yesterday; its next message gets ``451 4.7.1`` with no billing system configured at all;
converting it to paid in the console restores ``250`` at once."""

from __future__ import annotations

import datetime
import json
import re
import smtplib

import pytest

from tests.e2e.conftest import Product
from tests.e2e.mail import find_code, make_message, send
from tests.e2e.test_conversations import _mails_to, _new_mail
from tests.e2e.web import Visitor, csrf_of
from tests.helpers.smtp_sink import SmtpSink

BOSS = "boss@msp.example"


def _signed_in(product: Product, sink: SmtpSink) -> Visitor:
    v = Visitor(product.portal_url)
    csrf, _page = v.csrf("/partner/login")
    seen = len(_mails_to(sink, BOSS))
    r = v.request("POST", "/partner/login", data={"csrf": csrf, "email": BOSS})
    assert r.status_code == 200, r.text
    code = find_code(_new_mail(sink, BOSS, seen, "the sign-in code").data)
    r = v.request("POST", "/partner/verify", data={"csrf": csrf_of(r.text), "code": code})
    assert r.status_code == 303 and r.headers["location"] == "/partner", r.text
    return v


@pytest.mark.e2e
@pytest.mark.timeout(180)
def test_a_trial_ends_by_itself_and_converting_restores_mail(
    product: Product, sink: SmtpSink
) -> None:
    product.init()
    product.cli("partner", "create", "Northwind IT")
    product.cli("partner", "user", "add", "Northwind IT", BOSS, "--role", "partner-admin")
    product.start()
    v = _signed_in(product, sink)
    yesterday = (
        datetime.datetime.now(datetime.UTC).date() - datetime.timedelta(days=1)
    ).isoformat()
    csrf, _page = v.csrf("/partner/tenants/new")
    r = v.request(
        "POST",
        "/partner/tenants",
        data={"csrf": csrf, "name": "Acme", "domains": "acme.example", "plan": "trial",
              "trial_ends": yesterday},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    found = dict(
        re.findall(
            r"<dt>(SMTP user name|SMTP password)</dt><dd><code class=\"secret\">([^<]+)<", r.text
        )
    )
    user, password = found["SMTP user name"], found["SMTP password"]
    tenant_id = user  # the SMTP user name is the tenant id
    msg = make_message("Figures", "Hello Bob.")
    with pytest.raises(smtplib.SMTPResponseException) as refused:
        send(product.smtp_port, msg, user, password, rcpt=["bob@recipient.test"])
    assert refused.value.smtp_code == 451
    assert b"4.7.1" in refused.value.smtp_error and yesterday.encode() in refused.value.smtp_error
    # nothing suspended it (no billing system here): the trial ended by itself
    shown = json.loads(product.cli("tenant", "show", tenant_id, "--json").stdout)
    assert shown["standing"] == "active" and shown["trial_ends_on"] == yesterday
    csrf, page = v.csrf(f"/partner/tenants/{tenant_id}")
    assert f"Its trial ended on {yesterday}" in page
    r = v.request("POST", f"/partner/tenants/{tenant_id}/plan", data={"csrf": csrf, "plan": "paid"})
    assert r.status_code == 303
    reply = send(product.smtp_port, msg, user, password, rcpt=["bob@recipient.test"])
    assert "queued as" in reply, reply
