"""One real browser (Debian's Chromium, headless) through the whole recipient flow, against
the portal served by uvicorn on a loopback port, on a phone-sized screen."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from core.services import Services
from tests.helpers.pages import ARGS, CHROMIUM
from tests.portal.served import latest_code

from .conftest import make_tenant, seal_message

BOB = "bob@client.example"
HTML = """<table width="100%" style="border-collapse:collapse"><tr>
<td style="padding:12px;background-color:#f0f4f8"><h2 style="color:#0a7d4f">Your loan offer</h2>
<p>Dear Bob, please find the signed contract attached.</p>
<img src="https://tracker.example/open.gif"><script>document.title = 'pwned'</script>
</td></tr></table>"""
PDF = b"%PDF-1.4\n" + os.urandom(200_000) + b"\n%%EOF\n"


def _seed(settings) -> tuple[str, str]:
    async def run() -> tuple[str, str]:
        services = Services.open(settings)
        try:
            tenant = await make_tenant(
                services, "Acme", "acme.example", display_name="Acme Bank", brand_color="#0a7d4f"
            )
            sealed = await seal_message(
                services,
                tenant,
                recipients=[BOB],
                subject="Your loan contract",
                html=HTML,
                attachments=[("Loan contract (signed).pdf", "application/pdf", PDF)],
            )
            return sealed.message_id, sealed.tokens[BOB]
        finally:
            await services.close()

    return asyncio.run(run())


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_recipient_flow_in_a_real_browser(served, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    base, settings = served
    message_id, token = _seed(settings)
    shots = tmp_path / "shots"
    shots.mkdir()
    csp_errors: list[str] = []

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            context = browser.new_context(
                viewport={"width": 390, "height": 844},
                device_scale_factor=2,
                is_mobile=True,
                has_touch=True,
                accept_downloads=True,
            )
            page = context.new_page()
            page.on(
                "console",
                lambda m: (
                    csp_errors.append(m.text)
                    if "Content Security Policy" in m.text or "Content-Security-Policy" in m.text
                    else None
                ),
            )

            page.goto(f"{base}/m/{token}")
            assert (
                page.get_by_role("heading")
                .first.inner_text()
                .startswith("A secure message from Acme Bank is waiting for b***b@client.example")
            )
            page.screenshot(path=str(shots / "1-entry.png"), full_page=True)

            page.get_by_role("button", name="Send me a code").click()
            page.wait_for_url(f"{base}/m/{token}/code")
            assert page.get_by_label("One-time code").is_visible(), page.content()[-1500:]
            page.screenshot(path=str(shots / "2-code.png"), full_page=True)

            code = latest_code(settings)
            page.get_by_label("One-time code").fill(f"{(int(code) + 1) % 1_000_000:06d}")
            page.get_by_role("button", name="Open the message").click()
            assert page.get_by_role("alert").inner_text().startswith("That code is not right")
            page.screenshot(path=str(shots / "2b-wrong-code.png"), full_page=True)

            page.get_by_label("One-time code").fill(code)
            page.get_by_role("button", name="Open the message").click()
            page.wait_for_url(f"{base}/messages/{message_id}")
            assert page.get_by_role("heading", name="Your loan contract").is_visible()
            frame = page.frame_locator("iframe.body-frame")
            frame.get_by_text("please find the signed contract attached").wait_for()
            assert page.title() != "pwned"
            assert frame.locator("script").count() == 0
            assert frame.locator("img").count() == 1
            assert frame.locator("img").get_attribute("src") is None  # remote image dropped
            page.screenshot(path=str(shots / "3-message.png"), full_page=True)

            with page.expect_download() as info:
                page.get_by_role("link", name="Loan contract (signed).pdf").click()
            download = info.value
            assert download.suggested_filename == "Loan contract (signed).pdf"
            assert Path(download.path()).read_bytes() == PDF

            page.get_by_role("link", name="Inbox").click()
            page.wait_for_url(f"{base}/inbox")
            assert page.get_by_text("Your loan contract").is_visible()
            page.screenshot(path=str(shots / "4-inbox.png"), full_page=True)

            page.get_by_role("button", name="Sign out").click()
            assert page.get_by_role("heading", name="You are signed out").is_visible()
            page.goto(f"{base}/messages/{message_id}")
            assert page.get_by_role("heading", name="Please open your message link again")
        finally:
            browser.close()

    assert csp_errors == [], csp_errors  # our own pages never trip our own CSP
    keep = os.environ.get("SEALMAIL_SCREENSHOT_DIR")
    if keep:
        shutil.copytree(shots, keep, dirs_exist_ok=True)
