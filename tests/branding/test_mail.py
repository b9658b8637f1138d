"""``compose``: complete, structural, UTF-8 safe mail."""

from __future__ import annotations

import email
import email.policy

import pytest

from branding.mail import Rendered, compose

R = Rendered(
    subject="Grüße — 你好", text="Hallo Bob,\nüber 100 € ✓\n", html="<p>Hallo <b>Bob</b> ✓</p>"
)


def _parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)


def _lf(text: str) -> str:
    return text.replace("\r\n", "\n")


def test_a_complete_multipart_alternative_message() -> None:
    data = compose(
        from_addr="Acme Secure <secure@acme.example>", to_addr="bob@client.example", rendered=R
    )
    assert isinstance(data, bytes)
    assert data.isascii()  # 7-bit clean: encoded words, QP/base64 bodies
    assert b"\r\n" in data  # SMTP policy line endings
    msg = _parse(data)
    assert msg["From"] == "Acme Secure <secure@acme.example>"
    assert msg["To"] == "bob@client.example"
    assert msg["Subject"] == "Grüße — 你好"
    assert msg["Date"] and msg["MIME-Version"] == "1.0"
    assert msg["Message-ID"].endswith("@acme.example>")
    assert msg.get_content_type() == "multipart/alternative"
    kinds = [p.get_content_type() for p in msg.iter_parts()]
    assert kinds == ["text/plain", "text/html"]  # the last is the preferred one
    assert _lf(msg.get_body(("plain",)).get_content()) == R.text
    assert _lf(msg.get_body(("html",)).get_content()).strip() == R.html
    assert msg.get_body(("plain",)).get_content_charset() == "utf-8"


def test_reply_to_and_extra_headers() -> None:
    data = compose(
        from_addr="secure@acme.example",
        to_addr="bob@client.example",
        rendered=R,
        reply_to="alice@acme.example",
        headers={"Auto-Submitted": "auto-generated", "Message-ID": "<fixed@acme.example>"},
    )
    msg = _parse(data)
    assert msg["Reply-To"] == "alice@acme.example"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg.get_all("Message-ID") == ["<fixed@acme.example>"]


@pytest.mark.parametrize(
    "headers",
    [{"X-Test": "a\r\nBcc: victim@example.org"}, {"X-Test": "a\nB: c"}, {"X-A\r\nB": "c"}],
)
def test_header_injection_is_refused(headers: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        compose(from_addr="s@acme.example", to_addr="b@c.example", rendered=R, headers=headers)


def test_injection_through_the_subject_is_refused() -> None:
    bad = Rendered(subject="hi\r\nBcc: victim@example.org", text="t", html="h")
    with pytest.raises(ValueError):
        compose(from_addr="s@acme.example", to_addr="b@c.example", rendered=bad)


def test_internationalised_recipient_address() -> None:
    data = compose(from_addr="secure@acme.example", to_addr="jürgen@müller.example", rendered=R)
    msg = _parse(data)
    assert msg["To"] == "jürgen@müller.example"
    assert _lf(msg.get_body(("plain",)).get_content()) == R.text


@pytest.mark.parametrize(
    "subject",
    ["Zqmark =?utf-8?Q?=00=80 ?= \ufffd", "=?utf-8?b?AA==?=", "a =?x?q?=0D=0A?= b"],
)
def test_text_that_looks_like_an_encoded_word_stays_literal(subject: str) -> None:
    # the email package would decode such text on its own (NULs and line breaks included)
    raw = compose(
        from_addr="a@b.example", to_addr="c@d.example", rendered=Rendered(subject, "t", "<p>h</p>")
    )
    shown = str(email.message_from_bytes(raw, policy=email.policy.default)["Subject"])
    assert shown.replace("\u200b", "") == subject
    assert not {"\x00", "\r", "\n"} & set(shown)
