"""A compliance officer places and releases a legal hold in a real browser (Debian's
Chromium, headless); the page says what retention applies."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.accounts.tenants import get_tenant
from core.accounts.users import add_user
from core.services import Services
from tests.archive.test_retention import archived
from tests.helpers.pages import ARGS, CHROMIUM
from tests.portal.conftest import make_tenant
from tests.portal.served import in_thread, latest_code

OFFICER = "officer@acme.example"


def _seed(settings) -> None:  # noqa: ANN001
    async def run() -> None:
        services = Services.open(settings)
        try:
            tid = await make_tenant(services, "Acme", "acme.example", display_name="Acme Bank")
            async with services.db.session() as s:
                await add_user(s, await get_tenant(s, tid), OFFICER, "compliance")
                await s.commit()
            await archived(services, tid, "merger talks")
            await archived(services, tid, "merger follow-up")
        finally:
            await services.close()

    in_thread(run)


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_officer_places_and_releases_a_hold(served, tmp_path: Path) -> None:  # noqa: ANN001
    from playwright.sync_api import sync_playwright

    base, settings = served
    _seed(settings)
    shots = Path(os.environ.get("SEALMAIL_SCREENSHOTS", tmp_path))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
            page.goto(f"{base}/admin/retention")
            assert page.url.endswith("/admin/login")
            page.fill("#email", OFFICER)
            page.click("button[type=submit]")
            page.wait_for_selector("#code")
            page.fill("#code", latest_code(settings))
            page.click("button:has-text('Sign in')")
            page.wait_for_url(f"{base}/admin")
            page.click("nav >> text=Retention")
            page.wait_for_url(f"{base}/admin/retention")
            assert "about 7.0 years" in page.inner_text("main")
            assert page.locator("input[name=archive_retention]").count() == 0  # admins only
            page.fill("input[name=name]", "Case 2026-17")
            page.fill("input[name=reason]", "litigation hold")
            page.select_option("select[name=kind]", "search")
            page.fill("input[name=subject]", "merger")
            page.click("button:has-text('Place hold')")
            page.wait_for_selector("text=Legal hold placed.")
            row = page.locator("tr", has_text="Case 2026-17")
            assert "2 messages" in row.inner_text() and "in force" in row.inner_text()
            page.screenshot(path=str(shots / "retention-held.png"), full_page=True)
            row.locator("button:has-text('Release')").click()
            page.wait_for_selector("text=Legal hold released.")
            assert "by " + OFFICER in page.locator("tr", has_text="Case 2026-17").inner_text()
            page.screenshot(path=str(shots / "retention-released.png"), full_page=True)
        finally:
            browser.close()
