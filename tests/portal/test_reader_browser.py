"""The recipient's pages in a real browser (Debian's Chromium, headless), each looked at
with axe-core at phone and desk width, without sideways scrolling: the landing page, the
notice's entry and code pages, a conversation of several messages, the inbox, the revoked
and expired pages, the "we told the sender" confirmation and the signed-out page; and the
conversation on paper (print media): no navigation, no buttons."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from pathlib import Path

import pytest
from sqlalchemy import update

from core.hashing import sha256_hex
from core.ids import new_id, new_token
from core.models import Message, PortalAccess
from core.services import Services
from tests.helpers.pages import ARGS, CHROMIUM, look_at, screenshots_dir
from tests.portal.served import latest_code

from .conftest import make_tenant, seal_message

BOB = "bob@client.example"
HTML = "<p>Dear Bob,</p><p>the signed contract is attached. Please check page 3.</p>"


def _seed(settings) -> dict[str, str]:
    async def run() -> dict[str, str]:
        services = Services.open(settings)
        try:
            t = await make_tenant(
                services, "Acme", "acme.example", display_name="Acme Bank", brand_color="#0a7d4f"
            )
            first = await seal_message(
                services,
                t,
                recipients=[BOB, "Carol Jones <carol@other.example>"],
                subject="Your loan contract",
                html=HTML,
                attachments=[("Loan contract (signed).pdf", "application/pdf", b"%PDF-1.4\n")],
            )
            reply = await seal_message(
                services,
                t,
                recipients=["alice@acme.example"],
                sender=f"Bob Client <{BOB}>",
                subject="Re: Your loan contract",
                text="Thank you, Alice. Page 3 is fine; I signed it.\n",
                date="Tue, 04 Mar 2025 11:02:00 +0000",
            )
            revoked = await seal_message(services, t, recipients=[BOB], subject="Wrong figures")
            expired = await seal_message(
                services, t, recipients=[BOB], subject="Old statement", expires_in=-3600
            )
            async with services.db.session() as s:
                await s.execute(
                    update(Message)
                    .where(Message.id == reply.message_id)
                    .values(thread_id=first.message_id, received_at=time.time() + 5)
                )
                s.add(
                    PortalAccess(
                        id=new_id("a_"),
                        token_hash=sha256_hex(new_token(32)),
                        message_id=reply.message_id,
                        tenant_id=t,
                        recipient=BOB,
                        expires_at=time.time() + 86400,
                        kind="author",
                    )
                )
                await s.execute(
                    update(PortalAccess)
                    .where(PortalAccess.message_id == revoked.message_id)
                    .values(revoked=True, revoked_at=time.time(), revoked_by="alice@acme.example")
                )
                await s.commit()
            return {
                "first": first.message_id,
                "token": first.tokens[BOB],
                "revoked": revoked.message_id,
                "expired_token": expired.tokens[BOB],
            }
        finally:
            await services.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


@pytest.mark.browser
@pytest.mark.timeout(240)
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_recipient_pages_look_right(served) -> None:
    from playwright.sync_api import sync_playwright

    base, settings = served
    ids = _seed(settings)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            # axe-core is injected as a script, which the pages' CSP would refuse
            context = browser.new_context(viewport={"width": 390, "height": 844})
            page = context.new_page()
            page.goto(f"{base}/")
            assert page.get_by_role("heading", name="This is a secure-message portal").is_visible()
            look_at(page, "landing", group="reader")

            page.goto(f"{base}/m/{ids['token']}")
            look_at(page, "entry", group="reader")
            page.get_by_role("button", name="Send me a code").click()
            page.get_by_label("One-time code").wait_for()
            look_at(page, "code", group="reader")
            page.get_by_label("One-time code").fill(latest_code(settings))
            page.get_by_role("button", name="Open the message").click()
            page.wait_for_url(f"{base}/messages/{ids['first']}")
            assert page.get_by_text("This conversation has 2 messages").is_visible()
            assert page.get_by_text("You sent this on 4 March 2025 at 11:02 UTC").is_visible()
            page.frame_locator("iframe.body-frame").get_by_text("Please check page 3").wait_for()
            look_at(page, "conversation", group="reader")

            page.emulate_media(media="print")
            for name in ("Reply", "Save the conversation as PDF", "Inbox"):
                assert not page.get_by_role("link", name=name).first.is_visible(), name
            assert not page.get_by_role("button", name="Sign out").is_visible()
            assert page.get_by_text("Page 3 is fine; I signed it.").is_visible()
            page.set_viewport_size({"width": 800, "height": 1100})  # about A4 at 96 dpi
            page.screenshot(
                path=str(screenshots_dir() / "reader" / "conversation-print.png"), full_page=True
            )
            page.emulate_media(media="screen")

            page.get_by_role("link", name="Inbox").click()
            page.wait_for_url(f"{base}/inbox")
            assert page.get_by_text("2 messages").is_visible()
            look_at(page, "inbox", group="reader")

            page.goto(f"{base}/messages/{ids['revoked']}")
            assert page.get_by_role("heading", name="This message was revoked").is_visible()
            look_at(page, "revoked", group="reader")
            page.get_by_role("button", name="Ask Alice Sender for a new copy").click()
            heading = page.get_by_role("heading", name="We told Alice Sender you would like")
            heading.wait_for()
            look_at(page, "ask-confirmation", group="reader")

            page.get_by_role("button", name="Sign out").click()
            assert page.get_by_role("heading", name="You are signed out").is_visible()
            look_at(page, "signed-out", group="reader")

            page.goto(f"{base}/m/{ids['expired_token']}")
            assert page.get_by_role("heading", name="This message has expired").is_visible()
            look_at(page, "expired", group="reader")
        finally:
            browser.close()
