"""A sender in a real browser (Debian's Chromium, headless): sign in at /sent with an emailed
code as an address of the tenant's domain that no operator listed, see the sent list and a
message with its events, revoke bob (carol stays), look at the confirm page and a readable
error, and an admin's revoke button on /admin/messages/{id}. Every page is looked at
(axe-core at 1280x800 and 390x844, no sideways scrolling, screenshots)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from sqlalchemy import select, update

from conversations import events
from core.accounts.tenants import get_tenant
from core.accounts.users import add_user
from core.models import PortalAccess
from core.policy.models import PolicyDecision
from core.services import Services
from tests.helpers.pages import ARGS, CHROMIUM, look_at
from tests.portal.conftest import make_tenant, seal_message
from tests.portal.served import in_thread, latest_code

DESK = {"width": 1280, "height": 800}
ALICE, ADMIN = "alice@acme.example", "admin@acme.example"
BOB, CAROL = "bob@partner.example", "carol@partner.example"


def _seed(settings) -> str:  # noqa: ANN001
    async def run() -> str:
        services = Services.open(settings)
        try:
            tid = await make_tenant(services, "Acme", "acme.example", display_name="Acme Bank")
            sealed = await seal_message(
                services, tid, recipients=[BOB, CAROL], sender=f"Alice Smith <{ALICE}>"
            )
            mid = sealed.message_id
            async with services.db.session() as s:
                await add_user(s, await get_tenant(s, tid), ADMIN, "admin")
                opened = time.time() - 600
                await s.execute(
                    update(PortalAccess)
                    .where(PortalAccess.message_id == mid, PortalAccess.recipient == CAROL)
                    .values(first_opened_at=opened)
                )
                for rcpt in (BOB, CAROL):
                    events.record(s, tid, mid, events.NOTIFIED, rcpt, at=opened - 300)
                    s.add(PolicyDecision(
                        message_id=mid, tenant_id=tid, rcpt=rcpt, action="encrypt",
                        method="auto", disposition="portal", rule="",
                        explanation=json.dumps({"rules": [], "default": "pass",
                                                "trigger": "subject keyword [secure]",
                                                "upgraded_from": "pass",
                                                "detectors": {}}),
                    ))  # fmt: skip
                events.record(s, tid, mid, events.OPENED, CAROL, at=opened)
                await s.commit()
            return mid
        finally:
            await services.close()

    return in_thread(run)


def _revoked(settings, mid: str) -> dict[str, bool]:  # noqa: ANN001
    async def run() -> dict[str, bool]:
        services = Services.open(settings)
        try:
            async with services.db.session() as s:
                rows = await s.execute(select(PortalAccess).where(PortalAccess.message_id == mid))
                return {a.recipient: a.revoked for a in rows.scalars()}
        finally:
            await services.close()

    return in_thread(run)


def _sign_in(page, base: str, settings, door: str, address: str) -> None:  # noqa: ANN001
    page.goto(f"{base}/{door}/login")
    page.fill("#email", address)
    page.click("main button[type=submit]")
    page.wait_for_selector("#code")
    if door == "sent":
        look_at(page, "sent-code", group="sent")
    page.fill("#code", latest_code(settings))
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/{door}")


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_sender_in_control_in_a_real_browser(served) -> None:  # noqa: ANN001
    from playwright.sync_api import sync_playwright

    base, settings = served
    mid = _seed(settings)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_context(viewport=DESK).new_page()
            page.set_default_timeout(15_000)
            page.goto(f"{base}/sent")
            assert page.url.endswith("/sent/login")
            look_at(page, "sent-login", group="sent")
            _sign_in(page, base, settings, "sent", ALICE)  # not a listed user
            assert "Quarterly figures" in page.content()
            look_at(page, "sent-list", group="sent")

            page.goto(f"{base}/sent/{mid}")
            assert "Encrypted because the subject contained [secure]." in page.content()
            page.click(f"text=Revoke {BOB}'s access now")
            page.wait_for_url(f"{base}/sent/{mid}?done=revoked")
            text = page.inner_text("main")
            assert f"Revoked by {ALICE} at" in text and f"{ALICE} revoked {BOB}'s access." in text
            assert _revoked(settings, mid) == {BOB: True, CAROL: False}
            look_at(page, "sent-message-revoked", group="sent")

            page.click("text=Revoke everyone's access…")
            page.wait_for_url(f"{base}/sent/{mid}/revoke")
            assert CAROL in page.inner_text("main")
            look_at(page, "sent-revoke-confirm", group="sent")

            page.goto(f"{base}/sent/{mid}")
            page.fill("#expires", "next tuesday-ish")
            page.click("text=Change the expiry")
            assert "is not a time we understand" in page.inner_text("main")
            look_at(page, "sent-expiry-error", group="sent")
            page.fill("#expires", "7d")
            page.click("text=Change the expiry")
            page.wait_for_url(f"{base}/sent/{mid}?done=expiry")
            look_at(page, "sent-expiry-done", group="sent")

            admin = browser.new_context(viewport=DESK).new_page()
            admin.set_default_timeout(15_000)
            _sign_in(admin, base, settings, "admin", ADMIN)
            admin.goto(f"{base}/admin/messages/{mid}")
            assert f"Revoke {CAROL}'s access now" in admin.content()
            look_at(admin, "admin-message-revoke", group="sent")
            admin.click(f"text=Revoke {CAROL}'s access now")
            admin.wait_for_url(f"{base}/admin/messages/{mid}?done=revoked")
            assert _revoked(settings, mid) == {BOB: True, CAROL: True}
            look_at(admin, "admin-message-revoked", group="sent")
        finally:
            browser.close()
