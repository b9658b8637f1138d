"""A recipient replies from a real browser (Debian's Chromium, headless) with a 2 MB file;
one pipeline round and one delivery round later, the relay (a capturing sink) has a mail to
the original sender threaded on the original and carrying the same file. The reply and
forward forms, their error states and the refusal page are looked at on the way."""

from __future__ import annotations

import asyncio
import concurrent.futures
import email
import email.policy
import hashlib
import os
import re
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import select, update

from core.models import Message
from core.portal_message import PortalMessage
from core.services import Services
from gateway.delivery.drain import deliver_due
from gateway.delivery.relay import RelayPool
from gateway.pipeline.runner import process_pending
from gateway.worker import worker_id
from tests.helpers.pages import ARGS, CHROMIUM, look_at
from tests.helpers.smtp_sink import SmtpSink
from tests.portal.served import serve_portal

from .conftest import code_mails, make_tenant, seal_message

BOB = "bob@client.example"
ALICE = "alice@acme.example"
FILE = os.urandom(2 * 1024 * 1024)
T = TypeVar("T")


def _run(settings: Any, fn: Callable[[Services], Awaitable[T]]) -> T:
    """``fn(services)`` on a loop of its own thread (sync Playwright holds this thread's)."""

    async def main() -> T:
        services = Services.open(settings)
        try:
            return await fn(services)
        finally:
            await services.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main()).result(timeout=120)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Any, SmtpSink]]:
    """The portal, with the relay pointing at a sink (the reply is delivered there)."""
    with (
        SmtpSink() as sink,
        serve_portal(
            tmp_path, relay=f"127.0.0.1:{sink.port}", relay_tls="none", smtp_hostname="gw.test"
        ) as (base, settings),
    ):
        yield base, settings, sink


async def _seed(services: Services) -> tuple[str, str, str]:
    tenant = await make_tenant(services, "Acme", "acme.example", display_name="Acme Bank")
    sealed = await seal_message(
        services,
        tenant,
        recipients=[BOB, "carol@other.example"],
        sender=f"Alice Smith <{ALICE}>",
        subject="Your loan contract",
        attachments=[("contract.pdf", "application/pdf", b"%PDF-1.4\n" + os.urandom(5000))],
    )
    async with services.db.session() as s:
        msg = await s.get(Message, sealed.message_id)
        assert msg is not None and msg.meta_object_id
        pm = PortalMessage.from_json(await services.vault.read(s, tenant, msg.meta_object_id))
    return sealed.message_id, sealed.tokens[BOB], pm.message_id_header


async def _latest_code(services: Services) -> str:
    _item, mail = (await code_mails(services))[-1]
    m = re.search(r"\b(\d{6})\b", mail.get_body(("plain",)).get_content())
    assert m
    return m.group(1)


async def _pipeline_and_delivery(services: Services) -> None:
    assert await process_pending(services) >= 1
    pool = RelayPool(services.settings)
    try:
        await deliver_due(services, pool, worker_id())
    finally:
        await pool.close()


@pytest.mark.browser
@pytest.mark.timeout(240)
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_a_recipient_replies_with_a_2mb_file_in_a_real_browser(served) -> None:
    from playwright.sync_api import sync_playwright

    base, settings, sink = served
    message_id, token, original_msgid = _run(settings, _seed)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            # axe-core is injected as an inline script, which the pages' CSP refuses
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            page.set_default_timeout(20_000)
            page.goto(f"{base}/m/{token}")
            page.get_by_role("button", name="Send me a code").click()
            page.get_by_label("One-time code").fill(_run(settings, _latest_code))
            page.get_by_role("button", name="Open the message").click()
            page.wait_for_url(f"{base}/messages/{message_id}")

            # the conversation view's Reply button belongs to the view; its target is this
            page.goto(f"{base}/messages/{message_id}/reply")
            assert page.get_by_role("heading", name="Reply").is_visible()
            goes_to = page.get_by_text("Your reply goes to").inner_text()
            assert goes_to.startswith(f"Your reply goes to Alice Smith <{ALICE}>")
            look_at(page, "reply-form", group="reader-reply")

            page.get_by_role("button", name="Send reply securely").click()
            assert page.get_by_role("alert").inner_text().startswith("Write a reply")
            look_at(page, "reply-form-empty", group="reader-reply")

            page.get_by_label("Your reply").fill("Dear Alice,\nthe signed contract is attached.")
            page.get_by_label(re.compile("^Attach files")).set_input_files(
                {"name": "signed contract.pdf", "mimeType": "application/pdf", "buffer": FILE}
            )
            page.get_by_role("button", name="Send reply securely").click()
            page.wait_for_url(f"{base}/messages/{message_id}?notice=replied")

            page.goto(f"{base}/messages/{message_id}/reply?all=1")
            assert "and 1 other: carol@other.example" in page.content()
            look_at(page, "reply-all-form", group="reader-reply")

            page.goto(f"{base}/messages/{message_id}/forward")
            assert page.get_by_text("contract.pdf").is_visible()
            look_at(page, "forward-form", group="reader-reply")
            page.get_by_label("Forward to").fill("dan@partner.example, not-an-address")
            page.get_by_role("button", name="Forward securely").click()
            assert "not-an-address" in page.get_by_role("alert").inner_text()
            look_at(page, "forward-form-error", group="reader-reply")

            def no_replies(services: Services) -> Awaitable[None]:
                async def go() -> None:
                    async with services.db.session() as s:
                        await s.execute(
                            update(Message)
                            .where(Message.id == message_id)
                            .values(reply_mode="none")
                        )
                        await s.commit()

                return go()

            _run(settings, no_replies)
            page.goto(f"{base}/messages/{message_id}/reply")
            assert page.get_by_role("heading", name="Replies are turned off").is_visible()
            look_at(page, "reply-refused", group="reader-reply")
        finally:
            browser.close()

    async def stored(services: Services) -> list[Message]:
        async with services.db.session() as s:
            rows = await s.execute(select(Message).where(Message.parent_id == message_id))
            return list(rows.scalars().all())

    (reply,) = _run(settings, stored)
    assert (reply.origin, reply.mail_from, reply.thread_id) == ("reply", BOB, message_id)

    _run(settings, _pipeline_and_delivery)
    (got,) = sink.wait_for(lambda m: ALICE in m.rcpt_tos, timeout=30)
    mail = email.message_from_bytes(got.data, policy=email.policy.default)
    assert mail["In-Reply-To"] == original_msgid
    assert mail["Subject"] == "Re: Your loan contract"
    (att,) = list(mail.iter_attachments())
    assert att.get_filename() == "signed contract.pdf"
    assert hashlib.sha256(att.get_content()).hexdigest() == hashlib.sha256(FILE).hexdigest()
