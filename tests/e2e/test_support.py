"""The support desk end to end against ``sealmail serve``: the billing system creates an
account with a contact (signed webhook), the contact has a PIN, the desk checks it with
``sealmail support verify`` (stdin) and through the running portal's API with an agent key;
the fifth wrong PIN locks it and the "locked" mail reaches the relay once."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import subprocess
import urllib.error
import urllib.request

from sqlalchemy import select

from core.config.loading import load_settings
from core.models import AccountContact
from core.services import Services
from tests.e2e.conftest import SEALMAIL, Product
from tests.e2e.test_billing import SECRET, _webhook
from tests.helpers.smtp_sink import SmtpSink
from tests.support.test_pins import give_pin

ANN = "ann@acme.example"


def _verify(product: Product, pin: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SEALMAIL, "--config", str(product.config), "support", "verify", ANN, *args],
        capture_output=True,
        text=True,
        timeout=120,
        input=pin + "\n",
    )


def _api(product: Product, key: str, pin: str) -> dict[str, object]:
    req = urllib.request.Request(  # noqa: S310 - loopback test server
        f"{product.portal_url}/api/v1/support/verify",
        data=json.dumps({"email": ANN, "pin": pin}).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
            return json.loads(resp.read())
    except urllib.error.HTTPError as err:
        raise AssertionError(f"HTTP {err.code} {err.read()!r}") from None


def _give_pin(product: Product) -> str:
    async def go() -> str:
        svc = Services.open(load_settings(product.config))
        try:
            async with svc.db.session() as s:
                stmt = select(AccountContact.id).where(AccountContact.email == ANN)
                cid = (await s.execute(stmt)).scalar_one()
            return await give_pin(svc, cid)
        finally:
            await svc.close()

    return asyncio.run(go())


def test_desk_checks_and_locks_against_a_running_product(product: Product, sink: SmtpSink) -> None:
    product.init(billing_webhook_secret=SECRET)
    product.create_tenant("Acme", "acme.example")
    product.start()
    _webhook(
        product,
        "evt_s1",
        "account.created",
        account="acct_acme",
        kind="tenant",
        tenant="Acme",
        name="Acme Inc",
        contacts=[{"email": ANN, "role": "owner"}],
    )
    pin = _give_pin(product)
    key = json.loads(product.cli("support", "agent", "add", "desk@op.example", "--json").stdout)[
        "key"
    ]

    ok = _verify(product, pin, "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["account"] == "Acme Inc"
    body = _api(product, key, pin)
    assert body["result"] == "match" and body["standing"] == "good"

    wrong = "000000" if pin != "000000" else "000001"
    for _ in range(4):
        assert _verify(product, wrong).returncode == 1
    last = _api(product, key, wrong)
    assert last["result"] == "no_match" and last["locked_now"] is True
    assert _api(product, key, pin)["result"] == "locked"
    assert _verify(product, pin).returncode == 1

    got = sink.wait_for(lambda m: ANN in m.rcpt_tos, timeout=60)
    msg = email.message_from_bytes(got[0].data, policy=email.policy.default)
    assert msg["Subject"] == "Your support PIN is locked"
    body_text = msg.get_body(("plain",))
    assert body_text is not None and "/pin" in body_text.get_content()
    assert pin not in got[0].data.decode(errors="replace")
    # only one lock mail, however many checks followed
    assert len([m for m in sink.messages if ANN in m.rcpt_tos]) == 1
