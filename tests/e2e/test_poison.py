"""No poison messages, through ``sealmail serve``: the two messages found to break the
pipeline (a 2,000-deep multipart nesting, an RFC 2047 encoded NUL in the subject) each end
within the test's time, either sealed for the portal (the link's page answers 200) or
bounced to the sender with a DSN naming the reason; either way the queue is empty
afterwards and ``queue show`` says what became of the message. The mechanism itself (a
content error in a pass, a few tries, the DSN, the rows) is tested deterministically in
tests/gateway/pipeline/test_poison.py."""

from __future__ import annotations

import json
import re
import smtplib
import ssl
import time
import urllib.request

import pytest

from tests.e2e.conftest import Product
from tests.e2e.mail import find_link, parse, text_of
from tests.helpers.smtp_sink import Received, SmtpSink

SENDER = "alice@acme.example"


def _nested(depth: int) -> bytes:
    head = (
        f"From: Alice <{SENDER}>\r\nTo: bob1@recipient.test\r\nSubject: [secure] nested\r\n"
        "Message-ID: <nested@acme.example>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b0"\r\n\r\n'
    )
    opening = "".join(
        f'--b{i}\r\nContent-Type: multipart/mixed; boundary="b{i + 1}"\r\n\r\n'
        for i in range(depth)
    )
    inner = f"--b{depth}\r\nContent-Type: text/plain\r\n\r\nthe innermost part\r\n--b{depth}--\r\n"
    closing = "".join(f"--b{i}--\r\n" for i in reversed(range(depth)))
    return (head + opening + inner + closing).encode()


NUL_SUBJECT = (
    f"From: Alice <{SENDER}>\r\nTo: bob2@recipient.test\r\n"
    "Subject: =?utf-8?q?[secure]_figures=00hidden?=\r\n"
    "Message-ID: <nul@acme.example>\r\nMIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n\r\nthe figures\r\n"
).encode()


def _send_raw(port: int, tenant: dict[str, str], data: bytes, rcpt: str) -> str:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
        smtp.starttls(context=ctx)
        smtp.login(tenant["smtp_username"], tenant["smtp_password"])
        smtp.mail(SENDER)
        smtp.rcpt(rcpt)
        code, text = smtp.data(data)
    assert code == 250, (code, text)
    found = re.search(r"queued as (\S+)", text.decode())
    assert found, text
    return found.group(1)


def _outcome(sink: SmtpSink, rcpt: str, timeout: float) -> Received:
    """The notification to ``rcpt`` or the DSN to the sender that names ``rcpt``."""

    def about(m: Received) -> bool:
        if rcpt in m.rcpt_tos:
            return True
        return m.rcpt_tos == [SENDER] and f"rfc822; {rcpt}".encode() in m.data

    return sink.wait_for(about, timeout=timeout)[0]


@pytest.mark.timeout(90)
def test_poison_messages_end_sealed_or_bounced(product: Product, sink: SmtpSink) -> None:
    tenant = product.create_tenant("Acme", "acme.example")
    product.start()
    cases = {
        "bob1@recipient.test": (_nested(2000), "nested too deeply"),
        "bob2@recipient.test": (NUL_SUBJECT, "such as a NUL"),
    }
    ids = {
        rcpt: _send_raw(product.smtp_port, tenant, data, rcpt) for rcpt, (data, _) in cases.items()
    }
    started = time.monotonic()
    for rcpt, (_, words) in cases.items():
        got = _outcome(sink, rcpt, timeout=max(5.0, 40 - (time.monotonic() - started)))
        shown = json.loads(product.cli("queue", "show", ids[rcpt], "--json").stdout)
        if rcpt in got.rcpt_tos:  # processed: sealed, and its page opens
            link = find_link(got.data, product.portal_url)
            with urllib.request.urlopen(link, timeout=10) as page:  # noqa: S310 - loopback
                assert page.status == 200
            assert shown["state"] == "processed"
            continue
        # bounced: a DSN naming the reason, the message failed and kept
        dsn = parse(got.data)
        assert got.mail_from in ("", "<>") and dsn.get_content_type() == "multipart/report"
        readable = text_of(dsn)
        assert "the message could not be processed" in readable and words in readable
        assert "Status: 5.6.0" in got.data.decode(errors="replace")
        assert b"the innermost part" not in got.data and b"the figures\r\n" not in got.data
        assert shown["state"] == "failed" and shown["error_kind"] == "content"
        assert shown["status"].startswith("bounced because the message could not be processed")
        assert "last error bounced because" in product.cli("queue", "show", ids[rcpt]).stdout
        assert [(r["recipient"], r["disposition"]) for r in shown["recipients"]] == [
            (rcpt, "bounced")
        ]
    # nothing is left waiting: no message in the pipeline, no recipient in the outbox
    deadline = time.monotonic() + 15
    while True:
        rows = json.loads(product.cli("queue", "list", "--json").stdout)
        if not rows or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert rows == []
