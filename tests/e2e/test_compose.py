"""A secure message written at ``/compose`` in the running product (``sealmail serve``): the
sender signs in at /sent with the code mailed through the relay, writes to an external
recipient with two attachments and options; the recipient's notification arrives at the
sink without any X-Sealmail-* option header, the recipient signs in through the link and
downloads both files byte for byte, the Bcc'd address gets its own notification and is named
nowhere else, and ``sealmail archive search`` finds the message."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time

import pytest

from tests.e2e.conftest import Product
from tests.e2e.mail import find_code, find_link, parse, text_of
from tests.e2e.web import Visitor, csrf_of
from tests.helpers.smtp_sink import SmtpSink

SENDER = "alice@acme.example"
BOB = "bob@recipient.test"
HIDDEN = "hidden@bcc.test"
OPTION_HEADERS = (
    b"x-sealmail-expires",
    b"x-sealmail-receipt",
    b"x-sealmail-reply",
    b"x-sealmail-forward",
    b"x-sealmail-encrypt",
)


def _code_for(sink: SmtpSink, rcpt: str, seen: set[int]) -> str:
    mail = sink.wait_for(lambda m: rcpt in m.rcpt_tos and id(m) not in seen, timeout=60)[-1]
    return find_code(mail.data)


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_composed_message_is_read_byte_for_byte(product: Product, sink: SmtpSink) -> None:
    product.create_tenant("Acme", "acme.example")
    product.cli("user", "add", "Acme", SENDER, "--role", "sender")
    product.start()
    small = os.urandom(300 * 1024)
    large = os.urandom(1536 * 1024)
    subject = "Merger terms " + os.urandom(4).hex()

    # --- the sender: code by mail through the relay, then the form -----------------------
    alice = Visitor(product.portal_url)
    csrf, _ = alice.csrf("/sent/login")
    seen = {id(m) for m in sink.messages}
    r = alice.request("POST", "/sent/login", data={"csrf": csrf, "email": SENDER})
    assert r.status_code == 200 and "Enter your code" in r.text, r.text[:500]
    code = _code_for(sink, SENDER, seen)
    r = alice.request("POST", "/sent/verify", data={"csrf": csrf_of(r.text),
                                                     "code": code})  # fmt: skip
    assert r.status_code == 303 and r.headers["location"] == "/sent", r.text[:500]
    csrf, page = alice.csrf("/compose")
    assert "Write a secure message" in page
    r = alice.request(
        "POST",
        "/compose",
        data={
            "csrf": csrf,
            "to": BOB,
            "bcc": HIDDEN,
            "subject": subject,
            "text": "Dear Bob,\nthe terms are attached.\nAlice",
            "expires": "7d",
            "receipt": "yes",
            "reply": "sender",
            "forward": "no",
        },
        files=[
            ("attachments", ("terms.pdf", small, "application/pdf")),
            ("attachments", ("data room.zip", large, "application/zip")),
        ],
    )
    assert r.status_code == 303, r.text[:1000]
    assert re.fullmatch(r"/sent/\S+\?notice=composed", r.headers["location"])
    shown = alice.request("GET", r.headers["location"])
    assert "Your secure message is on its way." in shown.text

    # --- the notifications: one per recipient, no option header, no Bcc named -------------
    note = sink.wait_for(lambda m: BOB in m.rcpt_tos, timeout=90)[0]
    sink.wait_for(lambda m: HIDDEN in m.rcpt_tos, timeout=90)
    for m in sink.messages:
        head = m.data.split(b"\r\n\r\n", 1)[0].lower()
        for name in OPTION_HEADERS:
            assert name + b":" not in head, (name, m.rcpt_tos)
        if HIDDEN not in m.rcpt_tos:
            assert HIDDEN.encode() not in m.data, m.rcpt_tos
    notification = parse(note.data)
    assert "the terms are attached" not in text_of(notification)  # it stays in the portal
    assert [p.get_filename() for p in notification.iter_attachments()] == []
    assert "bcc" not in {k.lower() for k in notification.keys()}

    # --- the recipient: link, code, message, both files byte for byte ---------------------
    link = find_link(note.data, product.portal_url)
    token_path = link[len(product.portal_url) :]
    bob = Visitor(product.portal_url)
    csrf, _ = bob.csrf(token_path)
    seen = {id(m) for m in sink.messages}
    r = bob.request("POST", f"{token_path}/code", data={"csrf": csrf})
    assert r.status_code == 200, r.text[:500]
    code = _code_for(sink, BOB, seen)
    csrf, _ = bob.csrf(token_path)
    r = bob.request("POST", f"{token_path}/verify", data={"csrf": csrf, "code": code})
    assert r.status_code == 303, r.text[:500]
    message = bob.request("GET", r.headers["location"])
    assert message.status_code == 200 and subject in message.text
    assert "the terms are attached" in message.text
    links = dict(
        (name, href)
        for href, name in re.findall(
            r'href="(/messages/[^"]+/attachments/\d+)"[^>]*>([^<]+)<', message.text
        )  # fmt: skip
    )
    assert set(links) == {"terms.pdf", "data room.zip"}, links
    got = {name: bob.request("GET", href).content for name, href in links.items()}
    assert hashlib.sha256(got["terms.pdf"]).digest() == hashlib.sha256(small).digest()
    assert got["data room.zip"] == large

    # --- the archive finds it, by subject and by sender -----------------------------------
    deadline = time.monotonic() + 60
    while True:
        found = json.loads(
            product.cli("archive", "search", "Acme", "--subject", subject, "--json").stdout
        )
        if found["total"]:
            break
        assert time.monotonic() < deadline, product.logs()[-2000:]
        time.sleep(0.5)
    (hit,) = found["items"]
    assert hit["subject"] == subject and sorted(hit["attachments"]) == [
        "data room.zip",
        "terms.pdf",
    ]
    assert hit["bcc"] == [HIDDEN]
    by_sender = json.loads(
        product.cli("archive", "search", "Acme", "--from", SENDER, "--json").stdout
    )
    assert by_sender["total"] == 1
