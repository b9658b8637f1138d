"""The policy edited in the browser, against the running product (issue 13, item 8): an admin
signs in at /admin with a mailed code, a syntax error is shown at its line, a valid edit
decides the next message, and a roll-back restores the version before — each seen at the
sink (a message the policy encrypts arrives as a notice, one it passes arrives as itself)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.conftest import Product
from tests.e2e.mail import find_code, make_message, parse, send
from tests.e2e.test_conversations import _mails_to, _new_mail, browser  # noqa: F401
from tests.helpers.pages import look_at
from tests.helpers.smtp_sink import SmtpSink

ADMIN = "admin@acme.example"
BOB = "bob@recipient.test"
ENCRYPT_MERGERS = """\
rules:
  - name: mergers
    when:
      subject_contains: [merger]
    action: encrypt
"""
BROKEN = """\
rules:
  - name: mergers
    when:
      subject_contains: [merger]
    action: encrpyt
"""
NOTHING = "rules: []\n"


def _admin_signs_in(browser: Any, product: Product, sink: SmtpSink) -> Any:  # noqa: F811
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    page.goto(f"{product.portal_url}/admin/login")
    page.fill("#email", ADMIN)
    seen = len(_mails_to(sink, ADMIN))
    page.click("button[type=submit]")
    page.wait_for_selector("#code")
    page.fill("#code", find_code(_new_mail(sink, ADMIN, seen, "the code").data))
    page.click("button:has-text('Sign in')")
    page.wait_for_url(f"{product.portal_url}/admin")
    return page


def _save(page: Any, product: Product, text: str) -> None:
    page.goto(f"{product.portal_url}/admin/policy")
    page.fill("#document", text)
    page.click("button:has-text('Save the policy')")


def _next_message_is_sealed(product: Product, sink: SmtpSink, tenant: dict[str, str]) -> bool:
    """Send a merger message to Bob; True if he got a notice, False if the message itself."""
    seen = len(_mails_to(sink, BOB))
    msg = make_message("The merger plan", "Dear Bob, the plan.")
    reply = send(product.smtp_port, msg, tenant["smtp_username"], tenant["smtp_password"])
    assert "queued as" in reply, reply
    got = parse(_new_mail(sink, BOB, seen, "the next message").data)
    subject = str(got["Subject"])
    assert ("Secure message" in subject) != (subject == "The merger plan"), subject
    return "Secure message" in subject


@pytest.mark.e2e
@pytest.mark.timeout(240)
def test_edit_apply_and_roll_back_in_a_real_browser(
    product: Product,
    sink: SmtpSink,
    browser: Any,  # noqa: F811
) -> None:
    product.init()
    tenant = product.create_tenant("Acme", "acme.example")
    product.cli("user", "add", "Acme", ADMIN, "--role", "admin")
    product.start()
    assert not _next_message_is_sealed(product, sink, tenant)  # no policy: in clear

    page = _admin_signs_in(browser, product, sink)
    _save(page, product, BROKEN)
    problem = page.locator("#problem")
    assert re.search(r"Line \d", problem.inner_text()), problem.inner_text()
    assert "action: encrpyt" in page.locator(".problem-line").inner_text()
    assert "Line 5" in problem.inner_text()
    look_at(page, "admin-policy-error", group="admin")
    assert not _next_message_is_sealed(product, sink, tenant)  # nothing was saved

    _save(page, product, ENCRYPT_MERGERS)
    page.wait_for_selector("text=Policy saved")
    assert _next_message_is_sealed(product, sink, tenant)

    _save(page, product, NOTHING)
    page.wait_for_selector("text=Policy saved")
    assert not _next_message_is_sealed(product, sink, tenant)

    page.goto(f"{product.portal_url}/admin/policy/history")
    assert "Version 2" in page.inner_text("main") and ADMIN in page.inner_text("main")
    page.click("a:has-text('Version 1')")
    assert "mergers" in page.locator(".diff").inner_text()  # what version 1 has and 2 lacks
    look_at(page, "admin-policy-version", group="admin")
    page.click("button:has-text('Roll back to version 1')")
    page.wait_for_selector("text=Rolled back")
    assert "version 3" in page.inner_text("main")
    assert _next_message_is_sealed(product, sink, tenant)

    exported = product.cli("policy", "export", "Acme").stdout
    assert "mergers" in exported
