"""A tenant admin publishes DKIM in a real browser (Debian's Chromium, headless): makes a
key, sees its record missing, publishes it (in a loopback DNS server the portal asks), sees
it found, switches to it. Every state is looked at with axe-core and at 390 and 1280 px:
the 400-character key wraps in its box, nothing scrolls sideways."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.accounts.tenants import create_tenant, get_tenant
from core.accounts.users import add_user
from core.services import Services
from tests.helpers.dns_stub import dns_stub
from tests.helpers.pages import ARGS, CHROMIUM, look_at
from tests.portal.served import in_thread, latest_code, serve_portal

ADMIN = "admin@acme.example"
LONG = "mail.acme-international-holdings-and-subsidiaries.example"
SECTION = f'section[id="domain-{LONG}"]'

pytestmark = pytest.mark.timeout(180)


def _seed(settings) -> None:  # noqa: ANN001
    async def run() -> None:
        services = Services.open(settings)
        try:
            async with services.db.session() as s:
                creds = await create_tenant(
                    s, services.keyring, "Acme", ["acme.example", LONG], display_name="Acme Bank"
                )
                await add_user(s, await get_tenant(s, creds.tenant_id), ADMIN, "admin")
                await s.commit()
        finally:
            await services.close()

    in_thread(run)


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_admin_publishes_and_switches_dkim(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with dns_stub() as stub, serve_portal(tmp_path, dns_resolver=stub.address) as running:
        base, settings = running
        _seed(settings)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            try:
                page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
                page.goto(f"{base}/admin/domains")
                assert page.url.endswith("/admin/login")
                page.fill("#email", ADMIN)
                page.click("button[type=submit]")
                page.wait_for_selector("#code")
                page.fill("#code", latest_code(settings))
                page.click("button:has-text('Sign in')")
                page.wait_for_url(f"{base}/admin")
                page.goto(f"{base}/admin/domains")
                main = page.inner_text("main")
                assert "acme.example has no DKIM key yet" in main
                look_at(page, "admin-domains-no-key", group="admin")

                section = page.locator("section", has_text="has no DKIM key yet").filter(
                    has=page.locator("h2", has_text=LONG)
                )
                section.locator("button:has-text('Make a DKIM key')").click()
                page.wait_for_selector("#notice")
                record = page.locator(f"{SECTION} .dns-record").first
                assert "missing" in record.inner_text()
                value = record.locator("code.dns-value").nth(1).inner_text()
                assert value.startswith("v=DKIM1; k=rsa; p=") and len(value) > 380
                name = record.locator("code.dns-value").first.inner_text()
                look_at(page, "admin-domains-pending", group="admin")
                # the key's box stays inside the phone's width
                box = record.locator("code.dns-value").nth(1).bounding_box()
                assert box is not None and box["x"] + box["width"] <= 390

                stub.publish(name, value)
                page.reload()
                record = page.locator(f"{SECTION} .dns-record").first
                assert record.locator(".dns-state").inner_text() == "found"
                page.locator(SECTION).locator("button:has-text('Switch to the new key')").click()
                page.wait_for_selector("text=Notices are now signed with the new key")
                assert f"Notices from {LONG} are signed with the key" in page.inner_text("main")
                look_at(page, "admin-domains-active", group="admin")
            finally:
                browser.close()
