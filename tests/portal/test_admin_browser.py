"""A compliance officer in a real browser (Debian's Chromium, headless): sign in with the
emailed code, open the held message, release it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from core.accounts.tenants import get_tenant
from core.accounts.users import add_user
from core.models import MessageRecipient
from core.services import Services
from tests.core.test_quarantine import SECRET, make_held
from tests.helpers.pages import ARGS, CHROMIUM
from tests.portal.conftest import make_tenant
from tests.portal.served import in_thread, latest_code

OFFICER = "officer@acme.example"


def _seed(settings) -> str:  # noqa: ANN001
    async def run() -> str:
        services = Services.open(settings)
        try:
            tid = await make_tenant(services, "Acme", "acme.example", display_name="Acme Bank")
            async with services.db.session() as s:
                await add_user(s, await get_tenant(s, tid), OFFICER, "compliance")
                await s.commit()
            _message_id, held_id = await make_held(services, tid)
            return held_id
        finally:
            await services.close()

    return in_thread(run)


def _override(settings) -> tuple[str, str]:  # noqa: ANN001
    async def run() -> tuple[str, str]:
        services = Services.open(settings)
        try:
            async with services.db.session() as s:
                row = (
                    await s.execute(
                        select(MessageRecipient).where(
                            MessageRecipient.rcpt == "bob@partner.example"
                        )
                    )
                ).scalar_one()
                return row.override, row.state
        finally:
            await services.close()

    return in_thread(run)


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_officer_releases_in_a_real_browser(served, tmp_path: Path) -> None:  # noqa: ANN001
    from playwright.sync_api import sync_playwright

    base, settings = served
    held_id = _seed(settings)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
            page.goto(f"{base}/admin/quarantine")  # not signed in: to the sign-in page
            assert page.url.endswith("/admin/login")
            page.fill("#email", OFFICER)
            page.click("button[type=submit]")
            page.wait_for_selector("#code")
            page.fill("#code", latest_code(settings))
            page.click("button:has-text('Sign in')")
            page.wait_for_url(f"{base}/admin")
            page.click("text=waiting in quarantine")
            page.click("a.small-button")
            page.wait_for_url(f"{base}/admin/quarantine/{held_id}")
            assert SECRET in page.inner_text("pre.body-text")
            page.screenshot(path=str(tmp_path / "held.png"), full_page=True)
            page.click("#release")
            page.wait_for_selector("text=Released")
            assert page.inner_text("#held-state").startswith("released by " + OFFICER)
            page.screenshot(path=str(tmp_path / "released.png"), full_page=True)
        finally:
            browser.close()
    assert _override(settings) == ("released", "pending")
