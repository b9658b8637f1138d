"""Secure conversations in the running product (issue 12's "done when"), driven only through
SPEC's contract: SMTP in, the sink out, the portal in headless Chromium, the API and the CLI.

- A recipient replies with a 2 MB attachment: the original sender gets it threaded, byte for
  byte; a reply-all reaches the external Cc sealed; the conversation shows both replies.
- Revoke from ``/sent`` for bob: his open page and his link say "revoked" at once while carol
  still reads; the admin API revokes carol the same way.
- ``X-Sealmail-Expires: 2h`` with the server's clock moved (libfaketime): readable at +1 h,
  "expired" at +2 h 1 min; no option header reaches the sink, only the loop stamp; with
  ``X-Sealmail-Receipt: yes`` exactly one "opened" mail reaches the sender.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.e2e.conftest import Product
from tests.e2e.mail import find_code, find_link, make_message, parse, send, text_of
from tests.e2e.web import Visitor, csrf_of
from tests.helpers.pages import ARGS, CHROMIUM, look_at
from tests.helpers.smtp_sink import SmtpSink

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

ALICE = "alice@acme.example"
BOB = "bob@client.example"
CAROL = "carol@partner.example"
FAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"


def _mails_to(sink: SmtpSink, rcpt: str) -> list[Any]:
    return [m for m in sink.messages if rcpt in m.rcpt_tos]


def _wait(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _new_mail(sink: SmtpSink, rcpt: str, seen: int, what: str = "a mail") -> Any:
    """The first mail to ``rcpt`` after the ``seen`` ones already there."""
    return _wait(f"{what} to {rcpt}", lambda: _mails_to(sink, rcpt)[seen:])[0]


def _secure(product: Product, tenant: dict[str, str], msg: EmailMessage, rcpts: list[str]) -> None:
    reply = send(
        product.smtp_port, msg, tenant["smtp_username"], tenant["smtp_password"], rcpt=rcpts
    )
    assert "queued as" in reply, reply


@pytest.fixture
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is not installed (scripts/test.sh installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def _recipient_signs_in(browser: Any, sink: SmtpSink, link: str, rcpt: str) -> Any:
    """A new browser for ``rcpt``: the link, a code by mail, the message page."""
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    page.goto(link)
    seen = len(_mails_to(sink, rcpt))
    page.get_by_role("button", name="Send me a code").click()
    code = find_code(_new_mail(sink, rcpt, seen, "the code").data)
    page.get_by_label("One-time code").fill(code)
    page.get_by_role("button", name="Open the message").click()
    page.wait_for_url(re.compile(r".*/messages/[^/?#]+.*"))
    return page


def _sender_signs_in(browser: Any, product: Product, sink: SmtpSink, address: str) -> Any:
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    page.goto(f"{product.portal_url}/sent/login")
    page.get_by_label("Email address").fill(address)
    seen = len(_mails_to(sink, address))
    page.get_by_role("button", name="Send me a code").click()
    code = find_code(_new_mail(sink, address, seen, "the code").data)
    page.get_by_label("One-time code").fill(code)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/sent.*"))
    return page


def _notification_link(product: Product, sink: SmtpSink, rcpt: str, seen: int = 0) -> str:
    return find_link(_new_mail(sink, rcpt, seen, "the notification").data, product.portal_url)


def test_reply_with_an_attachment_and_reply_all_in_a_real_browser(
    product: Product, sink: SmtpSink, browser: Any, tmp_path: Path
) -> None:
    tenant = product.create_tenant("Acme", "acme.example")
    product.start()
    original = make_message("[secure] Loan contract", "Dear Bob, the contract.", to=BOB)
    original["Cc"] = CAROL
    original["Message-ID"] = "<loan-1@acme.example>"
    _secure(product, tenant, original, [BOB, CAROL])
    link = _notification_link(product, sink, BOB)
    carol_notices = len(_wait("carol's notice", lambda: _mails_to(sink, CAROL)))

    page = _recipient_signs_in(browser, sink, link, BOB)
    conversation = page.url.split("?")[0]
    assert page.get_by_role("heading", name="Loan contract").first.is_visible()

    # Reply with a 2 MB attachment
    signed = os.urandom(2 * 1024 * 1024)
    upload = tmp_path / "signed contract.pdf"
    upload.write_bytes(signed)
    marker = "REPLY-" + secrets.token_hex(6)
    seen_alice = len(_mails_to(sink, ALICE))
    page.get_by_role("link", name="Reply", exact=True).first.click()
    page.get_by_label("Your reply").fill(f"Signed and attached. {marker}")
    page.locator("input[type=file]").set_input_files(str(upload))
    page.get_by_role("button", name="Send reply securely").click()
    page.wait_for_url(re.compile(r".*notice=replied.*"))

    got = parse(_new_mail(sink, ALICE, seen_alice, "the reply").data)
    assert got["In-Reply-To"].strip() == "<loan-1@acme.example>"
    assert "<loan-1@acme.example>" in str(got["References"])
    assert BOB in str(got["From"])
    assert marker in text_of(got)
    files = [p for p in got.iter_attachments() if p.get_filename() == "signed contract.pdf"]
    assert len(files) == 1
    sha = hashlib.sha256(files[0].get_content()).hexdigest()
    assert sha == hashlib.sha256(signed).hexdigest()
    assert not [
        n
        for n in got.keys()
        if n.lower().startswith("x-sealmail-") and n.lower() != "x-sealmail-processed"
    ]

    # Reply all: alice by mail, carol (external) sealed: a notice, not the text
    marker_all = "ALL-" + secrets.token_hex(6)
    seen_alice = len(_mails_to(sink, ALICE))
    page.goto(conversation)
    page.get_by_role("link", name="Reply all").first.click()
    page.get_by_label("Your reply").fill(f"Copying Carol. {marker_all}")
    page.get_by_role("button", name="Send reply securely").click()
    page.wait_for_url(re.compile(r".*notice=replied.*"))
    to_alice = parse(_new_mail(sink, ALICE, seen_alice, "the reply-all").data)
    assert marker_all in text_of(to_alice)
    to_carol = _new_mail(sink, CAROL, carol_notices, "carol's sealed copy")
    assert marker_all.encode() not in to_carol.data
    assert find_link(to_carol.data, product.portal_url)

    # the conversation shows both replies, in order after the original
    def both_shown() -> bool:
        page.goto(conversation)
        text = page.content()
        return marker in text and marker_all in text

    _wait("both replies in the conversation", both_shown, timeout=30)
    text = page.inner_text("body")
    assert text.index("Dear Bob") < text.index(marker) < text.index(marker_all)
    look_at(page, "conversation-with-replies", group="e2e")


def test_revoke_one_recipient_from_sent_then_the_other_by_the_admin_api(
    product: Product, sink: SmtpSink, browser: Any
) -> None:
    tenant = product.create_tenant("Acme", "acme.example")
    product.start()
    msg = make_message("[secure] Board minutes", "The minutes of the board.", to=BOB)
    msg["Cc"] = CAROL
    _secure(product, tenant, msg, [BOB, CAROL])
    bob_link = _notification_link(product, sink, BOB)
    carol_link = _notification_link(product, sink, CAROL)
    bob = _recipient_signs_in(browser, sink, bob_link, BOB)
    carol = _recipient_signs_in(browser, sink, carol_link, CAROL)
    bob_page, carol_page = bob.url, carol.url
    message_id = bob_page.split("/messages/", 1)[1].split("?")[0].split("#")[0]

    alice = _sender_signs_in(browser, product, sink, ALICE)
    alice.goto(f"{product.portal_url}/sent/{message_id}")
    alice.get_by_role("button", name=f"Revoke {BOB}'s access now").click()
    alice.wait_for_load_state()
    assert "revoked" in alice.inner_text("body").lower()

    # at once: bob's open session and his link say so; carol still reads
    response = bob.goto(bob_page)
    assert response is not None and response.status == 410
    assert "revoked" in bob.get_by_role("heading").first.inner_text().lower()
    response = bob.goto(bob_link)
    assert response is not None and response.status == 410
    assert "revoked" in bob.inner_text("body").lower()
    look_at(bob, "revoked-link", group="e2e")
    response = carol.goto(carol_page)
    assert response is not None and response.status == 200
    assert carol.get_by_role("heading", name="Board minutes").first.is_visible()

    # the admin API revokes carol the same way
    api = httpx2.post(
        f"{product.portal_url}/api/v1/messages/{message_id}/revoke",
        json={"recipient": CAROL},
        headers={"Authorization": f"Bearer {tenant['api_key']}"},
        timeout=30,
    )
    assert api.status_code == 200, api.text
    response = carol.goto(carol_page)
    assert response is not None and response.status == 410
    assert "revoked" in carol.get_by_role("heading").first.inner_text().lower()
    shown = product.cli("message", "show", message_id).stdout
    assert BOB in shown and CAROL in shown and "revoked" in shown.lower()


def _sign_in(visitor: Visitor, sink: SmtpSink, path: str, rcpt: str) -> str:
    """From the link's path to the message page (a code by mail); returns the page's path."""
    csrf, _ = visitor.csrf(path)
    seen = len(_mails_to(sink, rcpt))
    sent = visitor.request("POST", f"{path}/code", data={"csrf": csrf})
    assert sent.status_code == 200, sent.text[:300]
    code = find_code(_new_mail(sink, rcpt, seen, "the code").data)
    done = visitor.request(
        "POST", f"{path}/verify", data={"csrf": csrf_of(sent.text), "code": code}
    )
    assert done.status_code == 303, done.text[:300]
    return done.headers["location"]


def _move_clock(clock: Path, seconds: int) -> None:
    clock.write_text(f"+{seconds}\n")
    time.sleep(0.3)


def test_expiry_receipt_and_option_headers_with_the_clock_moved(
    product: Product, sink: SmtpSink, tmp_path: Path
) -> None:
    if not os.path.exists(FAKETIME):
        pytest.fail("libfaketime is not installed (scripts/test.sh installs Debian's faketime)")
    clock = tmp_path / "clock"
    clock.write_text("+0\n")
    tenant = product.create_tenant("Acme", "acme.example")
    product.start(
        env={
            "LD_PRELOAD": FAKETIME,
            "FAKETIME_TIMESTAMP_FILE": str(clock),
            "FAKETIME_NO_CACHE": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        }
    )
    options = {
        "X-Sealmail-Expires": "2h",
        "X-Sealmail-Receipt": "yes",
        "X-Sealmail-Reply": "sender",
        "X-Sealmail-Forward": "internal",
    }
    sealed = make_message("[secure] Salary review", "Your new salary.", to=BOB)
    clear = make_message("Lunch", "Lunch at noon?", to="dave@acme.example")
    for m in (sealed, clear):
        for name, value in options.items():
            m[name] = value
    _secure(product, tenant, sealed, [BOB])
    _secure(product, tenant, clear, ["dave@acme.example"])
    link = _notification_link(product, sink, BOB)
    _wait("the clear copy", lambda: _mails_to(sink, "dave@acme.example"))
    for m in sink.messages:
        names = {n.lower() for n in re.findall(rb"(?im)^(x-sealmail-[a-z-]+):", m.data)}
        assert names == {b"x-sealmail-processed"}, (m.rcpt_tos, names)

    # +1 h: readable, and opened twice more: one receipt only
    _move_clock(clock, 3600)
    bob = Visitor(product.portal_url)
    path = "/m/" + link.rsplit("/m/", 1)[1]
    page_path = _sign_in(bob, sink, path, BOB)
    for _ in range(3):
        page = bob.request("GET", page_path)
        assert page.status_code == 200 and "Salary review" in page.text
    again = Visitor(product.portal_url)
    assert again.request("GET", _sign_in(again, sink, path, BOB)).status_code == 200

    def receipts() -> list[Any]:
        return [
            m for m in _mails_to(sink, ALICE) if "opened" in str(parse(m.data)["Subject"]).lower()
        ]

    first = _wait("the opened receipt", receipts)
    time.sleep(3)  # a second one would have arrived by now
    assert len(receipts()) == 1, [str(parse(m.data)["Subject"]) for m in receipts()]
    assert BOB in text_of(parse(first[0].data))

    # +1 h 59 min: still readable (and the session's idle time starts again)
    _move_clock(clock, 3600 + 59 * 60)
    assert bob.request("GET", page_path).status_code == 200
    # +2 h 1 min: expired, for the open session and for the link
    _move_clock(clock, 2 * 3600 + 60)
    gone = bob.request("GET", page_path)
    assert gone.status_code == 410 and "expired" in gone.text.lower()
    assert "Your new salary" not in gone.text
    by_link = Visitor(product.portal_url).request("GET", path)
    assert by_link.status_code == 410 and "expired" in by_link.text.lower()
