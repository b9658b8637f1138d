"""The issue's passkey test in a real browser (Debian's Chromium, headless) with a CDP
virtual authenticator: a recipient of a sealed message signs in with the emailed code,
adds a passkey on /account, signs out, and opens a second message's link with the passkey
and no code. /account and the entry page are looked at with axe-core at 390 and 1280 px.

Chromium refuses an IP address as RP ID, so the portal is served and browsed as
``http://localhost:PORT`` (localhost is a secure context)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.services import Services
from tests.helpers.pages import ARGS, CHROMIUM, look_at
from tests.portal.served import in_thread, latest_code, serve_portal, virtual_authenticator

from .conftest import code_mails, make_tenant, seal_message

BOB = "bob@client.example"


@pytest.fixture
def served_localhost(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    with serve_portal(tmp_path, host="localhost") as running:
        yield running


def _seed(settings: Any) -> dict[str, str]:
    async def run() -> dict[str, str]:
        services = Services.open(settings)
        try:
            t = await make_tenant(services, "Acme", "acme.example", display_name="Acme Bank")
            first = await seal_message(services, t, recipients=[BOB], subject="Your contract")
            second = await seal_message(services, t, recipients=[BOB], subject="Your invoice")
            return {
                "first": first.message_id,
                "first_token": first.tokens[BOB],
                "second": second.message_id,
                "second_token": second.tokens[BOB],
            }
        finally:
            await services.close()

    return in_thread(run)


def _code_count(settings: Any) -> int:
    async def run() -> int:
        services = Services.open(settings)
        try:
            return len(await code_mails(services))
        finally:
            await services.close()

    return in_thread(run)


@pytest.mark.browser
@pytest.mark.timeout(240)
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_recipient_adds_a_passkey_and_opens_a_second_message_with_it(served_localhost) -> None:
    from playwright.sync_api import sync_playwright

    base, settings = served_localhost
    ids = _seed(settings)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            cdp, authenticator = virtual_authenticator(context, page)

            # the first message: the emailed code
            page.goto(f"{base}/m/{ids['first_token']}")
            assert not page.get_by_role("button", name="Use a passkey").is_visible()
            page.get_by_role("button", name="Send me a code").click()
            page.get_by_label("One-time code").fill(latest_code(settings))
            page.get_by_role("button", name="Open the message").click()
            page.wait_for_url(f"{base}/messages/{ids['first']}")

            # a modest suggestion on the message page leads to /account: add a passkey
            assert page.get_by_text("Sign in faster next time").is_visible()
            page.get_by_role("link", name="add a passkey").click()
            page.wait_for_url(f"{base}/account")
            assert page.get_by_text("You have no passkey yet.").is_visible()
            page.get_by_role("button", name="Add a passkey").wait_for()
            look_at(page, "account-empty", group="passkeys")
            page.get_by_label("A name for the new passkey").fill("Laptop")
            page.get_by_role("button", name="Add a passkey").click()
            page.wait_for_url(f"{base}/account?done=added")
            assert page.get_by_text(
                "Passkey \u201cLaptop\u201d, added today, not used yet."
            ).is_visible()
            look_at(page, "account", group="passkeys")
            stored = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
            assert len(stored["credentials"]) == 1
            assert stored["credentials"][0]["isResidentCredential"] is True
            assert stored["credentials"][0]["rpId"] == "localhost"

            page.get_by_role("button", name="Sign out", exact=True).click()
            assert page.get_by_role("heading", name="You are signed out").is_visible()

            # the second message: the passkey, and no code
            codes_before = _code_count(settings)
            page.goto(f"{base}/m/{ids['second_token']}")
            page.get_by_role("button", name="Use a passkey").wait_for()
            look_at(page, "entry-with-passkey", group="passkeys")
            page.get_by_role("button", name="Use a passkey").click()
            page.wait_for_url(f"{base}/messages/{ids['second']}")
            assert page.get_by_role("heading", name="Your invoice").is_visible()
            assert _code_count(settings) == codes_before
            used = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
            assert used["credentials"][0]["signCount"] >= 1

            page.get_by_role("link", name="Your sign-in").click()
            assert page.get_by_text(
                "Passkey \u201cLaptop\u201d, added today, last used today."
            ).is_visible()
            assert page.get_by_text("with your passkey").is_visible()
            page.goto(f"{base}/messages/{ids['second']}")
            assert not page.get_by_text("Sign in faster next time").is_visible()
        finally:
            browser.close()
