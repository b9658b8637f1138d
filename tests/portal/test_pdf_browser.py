"""Encrypted PDFs in a real browser (Debian's Chromium, headless): a recipient of a tenant
that sends PDFs chooses their PDF password, asks for the message as a PDF, and the mail that
reaches the relay (a capturing sink) carries a PDF that opens only with that password; no
mail at the sink contains it. The admin's setting, the message page, the password page and
its error are looked at (axe, 390 and 1280 px, screenshots)."""

from __future__ import annotations

import email
import email.policy
import hashlib
import io
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from conversations.protection import editable
from core.services import Services
from gateway.delivery.drain import deliver_due
from gateway.delivery.relay import RelayPool
from gateway.worker import worker_id
from tests.helpers.pages import ARGS, CHROMIUM, look_at
from tests.helpers.smtp_sink import SmtpSink
from tests.portal.served import admin_sign_in, serve_portal
from tests.portal.test_admin import _add_user
from tests.portal.test_reply_browser import _latest_code, _run

from .conftest import make_tenant, seal_message

BOB = "bob@client.example"
PASSWORD = "seven blue herons at dawn"
FILE = b"%PDF-1.4\n" + os.urandom(20_000)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Any, SmtpSink]]:
    with (
        SmtpSink() as sink,
        serve_portal(
            tmp_path, relay=f"127.0.0.1:{sink.port}", relay_tls="none", smtp_hostname="gw.test"
        ) as (base, settings),
    ):
        yield base, settings, sink


async def _seed(services: Services) -> tuple[str, str]:
    tenant = await make_tenant(services, "Acme", "acme.example", display_name="Acme Bank")
    await _add_user(services, tenant, "admin@acme.example", "admin")
    sealed = await seal_message(
        services,
        tenant,
        recipients=[BOB],
        sender="Alice Smith <alice@acme.example>",
        subject="Your loan contract",
        attachments=[("contract.pdf", "application/pdf", FILE)],
    )
    async with services.db.session() as s:
        (await editable(s, tenant)).pdf_when_no_key = True
        await s.commit()
    return sealed.message_id, sealed.tokens[BOB]


async def _deliver(services: Services) -> None:
    pool = RelayPool(services.settings)
    try:
        await deliver_due(services, pool, worker_id())
    finally:
        await pool.close()


@pytest.mark.browser
@pytest.mark.timeout(240)
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_choose_a_pdf_password_and_get_the_message_as_a_pdf(served) -> None:
    from playwright.sync_api import sync_playwright

    base, settings, sink = served
    message_id, token = _run(settings, _seed)
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
            look_at(page, "message-choose-pdf-password", group="reader-pdf")

            page.get_by_role("link", name="Choose your PDF password").click()
            page.wait_for_url(re.compile(r".*/pdf-password\?m=.*"))
            look_at(page, "pdf-password", group="reader-pdf")
            page.get_by_label("PDF password", exact=True).fill(BOB)
            page.get_by_label("The same password again").fill(BOB)
            page.get_by_role("button", name="Save my PDF password").click()
            assert "not be your email address" in page.get_by_role("alert").inner_text()
            look_at(page, "pdf-password-error", group="reader-pdf")

            page.get_by_label("PDF password", exact=True).fill(PASSWORD)
            page.get_by_label("The same password again").fill(PASSWORD)
            page.get_by_role("button", name="Save my PDF password").click()
            page.wait_for_url(f"{base}/messages/{message_id}?notice=pdf_password")
            look_at(page, "message-pdf-ready", group="reader-pdf")

            page.get_by_role("button", name="Send me this message as a PDF").click()
            page.wait_for_url(f"{base}/messages/{message_id}?notice=pdf_sent")
            assert "PDF" in page.get_by_role("status").inner_text()
            look_at(page, "message-pdf-sent", group="reader-pdf")

            admin = admin_sign_in(browser, base, settings, "admin@acme.example")
            admin.goto(f"{base}/admin/settings#pdf")
            box = admin.get_by_label(
                "PDF when the recipient has no OpenPGP key or S/MIME certificate"
            )
            assert box.is_checked()
            look_at(admin, "admin-settings-pdf", group="reader-pdf")
        finally:
            browser.close()

    _run(settings, _deliver)
    mails = sink.wait_for(lambda m: BOB in m.rcpt_tos and b"application/pdf" in m.data)
    for mail in sink.messages:
        assert PASSWORD.encode() not in mail.data
    parsed = email.message_from_bytes(mails[0].data, policy=email.policy.default)
    pdf = next(a for a in parsed.iter_attachments() if a.get_content_type() == "application/pdf")
    data = pdf.get_content()
    assert not PdfReader(io.BytesIO(data)).decrypt("")
    reader = PdfReader(io.BytesIO(data))
    assert reader.decrypt(PASSWORD)
    (got,) = reader.attachments["contract.pdf"]
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(FILE).hexdigest()
