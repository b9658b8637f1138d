"""Lines over 1,000 octets (issue 11, item 3): accepted up to 64 KiB as Postfix does,
delivered onward with no line over 998 octets and the same decoded text; a line over the
bound gets ``500 5.5.2`` and the connection carries on."""

from __future__ import annotations

import re
import secrets
import smtplib
import ssl
from pathlib import Path

import pytest

from gateway.intake.data_reader import MAX_LINE_CONTENT
from tests.e2e.conftest import Product
from tests.e2e.mail import find_link, parse
from tests.helpers.smtp_sink import SmtpSink

PLAIN = ("plain words \u00e9t\u00e9 " * 1300)[:20000]
HTML = "<p>" + ("html <b>bold</b> caf\u00e9 " * 1000)[:19993] + "</p>"


def _raw(subject: str, plain: str = PLAIN, html: str = HTML) -> bytes:
    """An Outlook-like multipart/alternative with one 8bit line of ~20,000 octets in
    the text/plain part and one in the HTML part."""
    return (
        "From: Alice Sender <alice@acme.example>\r\nTo: bob@recipient.test\r\n"
        f"Subject: {subject}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/alternative; boundary="LL"\r\n\r\n'
        "--LL\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        f"{plain}\r\nshort last line\r\n"
        "--LL\r\nContent-Type: text/html; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        f"{html}\r\n--LL--\r\n"
    ).encode()


def _client(product: Product, tenant: dict[str, str]) -> smtplib.SMTP:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    smtp = smtplib.SMTP("127.0.0.1", product.smtp_port, timeout=60)
    smtp.starttls(context=ctx)
    smtp.login(tenant["smtp_username"], tenant["smtp_password"])
    return smtp


def _transaction(smtp: smtplib.SMTP, data: bytes) -> tuple[int, bytes]:
    assert smtp.mail("alice@acme.example")[0] == 250
    assert smtp.rcpt("bob@recipient.test")[0] == 250
    return smtp.data(data)


def _texts(data: bytes) -> list[str]:
    msg = parse(data)
    return [
        p.get_content().replace("\r\n", "\n")
        for p in msg.walk()
        if p.get_content_maintype() == "text" and not p.is_multipart()
    ]


def _longest(data: bytes) -> int:
    return max(len(line) for line in re.split(rb"\r\n|\r|\n", data))


@pytest.mark.e2e
@pytest.mark.timeout(60)
def test_long_lines_accepted_and_delivered_within_998(product: Product, sink: SmtpSink) -> None:
    tenant = product.create_tenant("Acme", "acme.example")
    product.start()
    raw = _raw("Long lines in clear")
    assert _longest(raw) > 20000
    too_long = _raw("Over the bound", plain="x" * (MAX_LINE_CONTENT + 100))
    with _client(product, tenant) as smtp:
        code, text = _transaction(smtp, too_long)
        assert (code, text[:5]) == (500, b"5.5.2"), (code, text)
        # the connection carries on: the next message on it is accepted
        code, text = _transaction(smtp, raw)
        assert code == 250, (code, text)

    got = sink.wait_for(lambda m: "bob@recipient.test" in m.rcpt_tos)
    assert len(got) == 1  # the refused message went nowhere
    data = got[0].data
    assert _longest(data) <= 998
    assert b"Subject: Long lines in clear" in data
    assert _texts(data) == _texts(raw) == [PLAIN + "\nshort last line", HTML]
    assert b"quoted-printable" in data


@pytest.mark.e2e
@pytest.mark.browser
@pytest.mark.timeout(90)
def test_sealed_message_with_long_lines_shown_in_portal(
    product: Product, sink: SmtpSink, tmp_path: Path
) -> None:
    from tests.e2e.test_first_message import _read_in_browser

    tenant = product.create_tenant("Acme", "acme.example")
    product.start()
    marker = "LONGLINE-" + secrets.token_hex(6)
    html = "<p>" + marker + HTML[3:]  # the portal shows the HTML alternative
    with _client(product, tenant) as smtp:
        code, text = _transaction(smtp, _raw("[secure] Long lines", html=html))
        assert code == 250, (code, text)
    note = sink.wait_for(lambda m: "bob@recipient.test" in m.rcpt_tos)[0]
    assert _longest(note.data) <= 998
    assert marker.encode() not in note.data
    link = find_link(note.data, product.portal_url)
    content, _ = _read_in_browser(sink, link, tmp_path / "long.png", files=())
    assert marker in content
    assert "caf\u00e9 html" in content and content.count("bold") >= 900
