"""/compose in a real browser (Debian's Chromium, headless; the page has no script): a
sender signs in at /sent, sends the form once with a mistake and a file chosen, sees the
reasons and that the file must be chosen again, then sends it with two files and lands on
"Your secure message is on its way." Each page passes axe and has no sideways scrolling at
390 px (tests/helpers/pages.py)."""

from __future__ import annotations

import email
import email.policy
import os
from pathlib import Path

import pytest
from sqlalchemy import select

from core.accounts.tenants import get_tenant
from core.accounts.users import add_user
from core.models import Message
from core.services import Services
from tests.helpers.pages import ARGS, CHROMIUM, look_at
from tests.portal.conftest import make_tenant
from tests.portal.served import in_thread, latest_code

SENDER = "alice.sender@acme.example"


def _seed(settings) -> None:  # noqa: ANN001
    async def run() -> None:
        services = Services.open(settings)
        try:
            tid = await make_tenant(services, "Acme", "acme.example", display_name="Acme Bank")
            async with services.db.session() as s:
                await add_user(s, await get_tenant(s, tid), SENDER, "sender")
                await s.commit()
        finally:
            await services.close()

    in_thread(run)


def _stored(settings) -> list[tuple[str, bytes]]:  # noqa: ANN001
    async def run() -> list[tuple[str, bytes]]:
        services = Services.open(settings)
        try:
            async with services.db.session() as s:
                rows = (await s.execute(select(Message))).scalars().all()
                return [
                    (m.id, await services.vault.read(s, m.tenant_id, m.raw_object_id)) for m in rows
                ]
        finally:
            await services.close()

    return in_thread(run)


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_compose_in_a_real_browser(served, tmp_path: Path) -> None:  # noqa: ANN001
    from playwright.sync_api import sync_playwright

    base, settings = served
    _seed(settings)
    report = tmp_path / "Quarterly report.pdf"
    report.write_bytes(b"%PDF-1.4\n" + os.urandom(300_000))
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"first line\nsecond line\n")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            # axe is injected as an inline script: the page's CSP (script-src 'self') would block it
            page = browser.new_context().new_page()
            page.goto(f"{base}/compose")  # not signed in: to the sign-in page
            assert page.url.endswith("/sent/login")
            page.fill("#email", SENDER)
            page.click("button[type=submit]")
            page.wait_for_selector("#code")
            page.fill("#code", latest_code(settings))
            page.click("button:has-text('Sign in')")
            page.wait_for_url(f"{base}/sent")
            look_at(page, "sent-list-with-write-link", group="compose")
            page.click("text=Write a secure message")
            page.wait_for_url(f"{base}/compose")
            look_at(page, "compose-form", group="compose")

            # a mistake, with a file chosen: the reasons, the values kept, the file not
            page.fill("#to", "bob@partner.example, bob at partner")
            page.fill("#subject", "Quarterly report")
            page.fill("#text", "Dear Bob,\nthe report is attached.\n")
            page.select_option("#expires", "date")
            page.select_option("#reply", "sender")
            page.set_input_files("#attachments", [str(report)])
            page.click("button:has-text('Send securely')")
            page.wait_for_selector("#error-summary")
            assert "“bob at partner” is not an email address" in page.inner_text("#to-error")
            assert "enter it in the date field" in page.inner_text("#expires-error")
            assert "choose it again" in page.inner_text("#error-summary")
            assert page.input_value("#subject") == "Quarterly report"
            assert page.input_value("#reply") == "sender"
            look_at(page, "compose-errors", group="compose")
            assert _stored(settings) == []

            page.fill("#to", "bob@partner.example")
            page.fill("#bcc", "auditor@partner.example")
            page.select_option("#expires", "7d")
            page.check("#receipt")
            page.select_option("#forward", "internal")
            page.set_input_files("#attachments", [str(report), str(notes)])
            page.click("button:has-text('Send securely')")
            page.wait_for_selector("#notice")
            assert page.inner_text("#notice") == "Your secure message is on its way."
            assert "?notice=composed" in page.url
            assert page.inner_text("h1") == "Quarterly report"
            look_at(page, "compose-on-its-way", group="compose")
        finally:
            browser.close()

    [(qid, raw)] = _stored(settings)
    assert page.url.endswith(f"/sent/{qid}?notice=composed")
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["X-Sealmail-Expires"] == "7d" and parsed["X-Sealmail-Receipt"] == "yes"
    assert parsed["X-Sealmail-Reply"] == "sender" and parsed["X-Sealmail-Forward"] == "internal"
    assert "Bcc" not in parsed and b"auditor@partner.example" not in raw
    files = {a.get_filename(): a.get_payload(decode=True) for a in parsed.iter_attachments()}
    assert files == {"Quarterly report.pdf": report.read_bytes(), "notes.txt": notes.read_bytes()}
