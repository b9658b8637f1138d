"""Passphrases and step-up in a real browser (Debian's Chromium, headless): a recipient of a
message protected by the sender's passphrase signs in with the code, sees the page that asks
for it (with the hint), types a wrong one and then the right one, and reads the message; an
admin sets step-up for payment card numbers on /admin/settings; a sender sees the passphrase
fields on /compose. Every page is looked at (axe-core at 1280 and 390 px, no sideways
scrolling, screenshots)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from conversations.models import MessageGuard, TenantProtection
from core.hashing import hash_password
from core.services import Services
from tests.helpers.pages import ARGS, CHROMIUM, look_at
from tests.portal.served import admin_sign_in, serve_portal, virtual_authenticator
from tests.portal.test_admin import _add_user
from tests.portal.test_reply_browser import _latest_code, _run

from .conftest import make_tenant, seal_message

BOB = "bob@client.example"
CAROL = "carol@client.example"
CARD = "4111 1111 1111 1111"
PASSPHRASE = "Seven-Herons-at-Dawn"


async def _seed(services: Services) -> tuple[str, str, str]:
    tenant = await make_tenant(services, "Acme", "acme.example", display_name="Acme Bank")
    await _add_user(services, tenant, "admin@acme.example", "admin")
    sealed = await seal_message(
        services,
        tenant,
        recipients=[BOB],
        sender="Alice Smith <alice@acme.example>",
        subject="Your salary review",
        text="Dear Bob,\nyour new salary starts in January.\n",
    )
    async with services.db.session() as s:
        s.add(
            MessageGuard(
                message_id=sealed.message_id,
                tenant_id=tenant,
                step_up=False,
                step_up_reason="",
                passphrase_hash=hash_password(PASSPHRASE),
                passphrase_hint="the birds we saw on the lake",
                sender="alice@acme.example",
                passphrase_object_id="",
                created_at=time.time(),
            )
        )
        await s.commit()
    return tenant, sealed.message_id, sealed.tokens[BOB]


async def _step_up(services: Services, tenant: str) -> TenantProtection | None:
    async with services.db.session() as s:
        return await s.get(TenantProtection, tenant)


@pytest.mark.browser
@pytest.mark.timeout(240)
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_passphrase_page_and_step_up_setting_in_a_browser(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with serve_portal(tmp_path) as (base, settings):
        tenant, message_id, token = _run(settings, _seed)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            try:
                page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
                page.set_default_timeout(20_000)
                page.goto(f"{base}/m/{token}")
                page.get_by_role("button", name="Send me a code").click()
                page.get_by_label("One-time code").fill(_run(settings, _latest_code))
                page.get_by_role("button", name="Open the message").click()
                page.wait_for_url(f"{base}/messages/{message_id}")
                assert "One more step" in page.get_by_role("heading", level=1).inner_text()
                body = page.locator("main").inner_text()
                assert "protected this message with a passphrase" in body
                assert "the birds we saw on the lake" in body and "new salary" not in body
                look_at(page, "unlock-passphrase", group="guards")

                page.get_by_label("Passphrase").fill("Seven-Herons")
                page.get_by_role("button", name="Open the message").click()
                assert "not right" in page.get_by_role("alert").inner_text()
                look_at(page, "unlock-passphrase-wrong", group="guards")

                page.get_by_label("Passphrase").fill(PASSPHRASE)
                page.get_by_role("button", name="Open the message").click()
                page.wait_for_url(f"{base}/messages/{message_id}")
                assert "new salary starts in January" in page.locator("main").inner_text()

                admin = admin_sign_in(browser, base, settings, "admin@acme.example")
                admin.goto(f"{base}/admin/settings")
                section = admin.get_by_role("region", name="Extra proof before a message opens")
                section.get_by_label("When the message contains what the detectors").check()
                section.get_by_label("Payment card numbers").check()
                section.get_by_role("button", name="Save the step-up setting").click()
                admin.wait_for_url(f"{base}/admin/settings?done=saved")
                assert "when a message contains payment card numbers" in section.inner_text()
                look_at(admin, "admin-settings-step-up", group="guards")

                admin.goto(f"{base}/compose")
                assert admin.get_by_label("Passphrase").get_attribute("type") == "password"
                look_at(admin, "compose-with-passphrase", group="guards")
            finally:
                browser.close()
        row = _run(settings, lambda services: _step_up(services, tenant))
        assert row is not None and (row.step_up, row.step_up_detectors) == (
            "detectors",
            "credit_card",
        )


async def _seed_step_up(services: Services) -> dict[str, str]:
    tenant = await make_tenant(services, "Acme", "acme.example", display_name="Acme Bank")
    plain = await seal_message(services, tenant, recipients=[BOB], subject="Your contract")
    card = await seal_message(
        services,
        tenant,
        recipients=[BOB, CAROL],
        subject="Your new card",
        text=f"Dear customer,\nyour card is {CARD}.\n",
    )
    async with services.db.session() as s:
        s.add(
            TenantProtection(
                tenant_id=tenant, step_up="detectors", step_up_detectors="credit_card",
                updated_at=time.time(),
            )
        )  # fmt: skip
        s.add(
            MessageGuard(
                message_id=card.message_id, tenant_id=tenant, step_up=True,
                step_up_reason="it contains a payment card number", passphrase_hash="",
                passphrase_hint="", sender="alice@acme.example", passphrase_object_id="",
                created_at=time.time(),
            )
        )  # fmt: skip
        await s.commit()
    return {
        "plain": plain.message_id,
        "plain_token": plain.tokens[BOB],
        "card": card.message_id,
        "card_token": card.tokens[BOB],
        "carol_token": card.tokens[CAROL],
    }


def _code_sign_in(page, base: str, token: str, settings) -> None:  # noqa: ANN001
    page.goto(f"{base}/m/{token}")
    page.get_by_role("button", name="Send me a code").click()
    page.get_by_label("One-time code").fill(_run(settings, _latest_code))
    page.get_by_role("button", name="Open the message").click()


@pytest.mark.browser
@pytest.mark.timeout(240)
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_step_up_refuses_the_code_and_opens_with_a_passkey(tmp_path: Path) -> None:
    """Step-up for card numbers: the code alone shows the page that asks for a passkey; a
    recipient with a passkey confirms with it, one without adds one on this device."""
    from playwright.sync_api import sync_playwright

    with serve_portal(tmp_path, host="localhost") as (base, settings):
        ids = _run(settings, _seed_step_up)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            try:
                # Bob has a passkey from an earlier message
                context = browser.new_context(viewport={"width": 1280, "height": 800})
                page = context.new_page()
                page.set_default_timeout(20_000)
                virtual_authenticator(context, page)
                _code_sign_in(page, base, ids["plain_token"], settings)
                page.wait_for_url(f"{base}/messages/{ids['plain']}")
                page.goto(f"{base}/account")
                page.get_by_label("A name for the new passkey").fill("Laptop")
                page.get_by_role("button", name="Add a passkey").click()
                page.wait_for_url(f"{base}/account?done=added")
                page.get_by_role("button", name="Sign out", exact=True).click()

                # the code alone does not open the card message
                _code_sign_in(page, base, ids["card_token"], settings)
                page.wait_for_url(f"{base}/messages/{ids['card']}")
                text = page.locator("main").inner_text()
                assert "One more step" in text and "payment card number" in text
                assert "4111" not in page.content()
                page.get_by_role("button", name="Confirm with your passkey").wait_for()
                look_at(page, "step-up-confirm", group="guards")
                page.get_by_role("button", name="Confirm with your passkey").click()
                page.wait_for_url(f"{base}/messages/{ids['card']}")
                page.get_by_role("heading", name="Your new card").wait_for()
                assert "4111 1111 1111 1111" in page.locator("main").inner_text()
                context.close()

                # Carol has none yet: she adds one on this device and the message opens
                context = browser.new_context(viewport={"width": 390, "height": 844})
                page = context.new_page()
                page.set_default_timeout(20_000)
                virtual_authenticator(context, page)
                _code_sign_in(page, base, ids["carol_token"], settings)
                page.wait_for_url(f"{base}/messages/{ids['card']}")
                assert "4111" not in page.content()
                page.get_by_role("button", name="Add a passkey and open the message").wait_for()
                look_at(page, "step-up-add-passkey", group="guards")
                page.get_by_label("A name for the new passkey").fill("Phone")
                page.get_by_role("button", name="Add a passkey and open the message").click()
                page.get_by_role("heading", name="Your new card").wait_for()
                assert "4111 1111 1111 1111" in page.locator("main").inner_text()
            finally:
                browser.close()
