"""Onboarding in minutes against the running product (issue 14, item 5): an admin signs in
to /admin, opens the setup page (its PowerShell filled in with the tenant's values), starts
the live check and sends a message with the connector token from an allowed address: the
page, polling by itself, turns green with every step up to "handed back" with the sink's
250. A second check and a message without the token: the page names "no token". The page
is looked at on a phone and a desk (axe, no sideways scroll)."""

from __future__ import annotations

import json
import smtplib
import ssl
from typing import Any

import pytest

from tests.e2e.conftest import Product
from tests.e2e.mail import make_message
from tests.e2e.test_admin_policy import ADMIN, _admin_signs_in
from tests.e2e.test_conversations import browser  # noqa: F401
from tests.helpers.pages import look_at
from tests.helpers.smtp_sink import SmtpSink

BOB = "bob@recipient.test"


def _send(port: int, token: str) -> tuple[int, str]:
    """From 127.0.0.1 like a connector: STARTTLS, no AUTH, the token in a header."""
    msg = make_message("Setup test", "Hello from the setup check.")
    if token:
        msg["X-Sealmail-Tenant-Token"] = token
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.starttls(context=ctx)
        smtp.ehlo("connector.test")
        smtp.mail("alice@acme.example")
        code, text = smtp.rcpt(BOB)
        if code != 250:
            return code, text.decode()
        code, text = smtp.data(msg.as_bytes())
        return code, text.decode()


@pytest.mark.e2e
@pytest.mark.timeout(180)
def test_live_check_turns_green_and_names_a_missing_token(
    product: Product,
    sink: SmtpSink,
    browser: Any,  # noqa: F811
) -> None:
    created = product.cli(
        "tenant", "create", "Acme", "--domain", "acme.example", "--network", "127.0.0.1/32",
        "--json",
    )  # fmt: skip
    tenant = json.loads(created.stdout)
    product.cli("user", "add", "Acme", ADMIN, "--role", "admin")
    product.start()
    page = _admin_signs_in(browser, product, sink)

    page.goto(f"{product.portal_url}/admin/setup")
    body = page.inner_text("main")
    assert "New-OutboundConnector" in body and "X-Sealmail-Processed" in body
    assert "127.0.0.1/32" in body and "acme.example" in body
    look_at(page, "admin-setup", group="setup")
    page.set_viewport_size({"width": 1280, "height": 800})

    # the check: green for a message with the token from an allowed address
    page.click("form[action='/admin/setup/check'] button")
    page.wait_for_selector("[data-state=waiting]")
    code, text = _send(product.smtp_port, tenant["connector_token"])
    assert code == 250, text
    page.wait_for_selector("[data-state=ok]", timeout=60_000)  # the page polls by itself
    steps = page.inner_text("#check-state")
    for title in ("Arrived", "Tenant identified", "Policy decided", "Passed on unchanged"):
        assert title in steps, steps
    assert "Handed back to the next hop" in steps and "250" in steps, steps
    assert "connector token" in steps
    assert sink.wait_for(lambda m: BOB in m.rcpt_tos, timeout=30)
    page.locator("#check").screenshot(path=str(_shot("check-green")))
    look_at(page, "admin-setup-green", group="setup")
    page.set_viewport_size({"width": 1280, "height": 800})

    # a second check and a message without the token: the fault is named
    page.click("form[action='/admin/setup/check'] button")
    page.wait_for_selector("[data-state=waiting]")
    code, text = _send(product.smtp_port, "")
    assert code == 550 and "relay access denied" in text, (code, text)
    page.wait_for_selector("[data-state=fault]", timeout=30_000)
    steps = page.inner_text("#check-state")
    assert "No connector token" in steps and "X-Sealmail-Tenant-Token" in steps, steps
    page.locator("#check").screenshot(path=str(_shot("check-fault")))
    look_at(page, "admin-setup-fault", group="setup")


def _shot(name: str) -> Any:
    from tests.helpers.pages import screenshots_dir

    folder = screenshots_dir() / "setup"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}.png"
