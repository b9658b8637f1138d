"""core.line_length: what is relayed onwards never has a line over 998 octets."""

from __future__ import annotations

import email
import email.policy

import pytest

from core.line_length import fit_line_length, longest_line

pytestmark = pytest.mark.timeout(10)

HEAD = (
    b"From: a@acme.example\r\nSubject: =?utf-8?q?h=C3=A9?= a\r\n\tfolded subject\r\n"
    b"DKIM-Signature: v=1; a=rsa-sha256; d=acme.example;\r\n b=abc\r\nMIME-Version: 1.0\r\n"
)


def test_message_without_long_lines_is_returned_as_it_is() -> None:
    raw = HEAD + b"Content-Type: text/plain\r\n\r\n" + b"x" * 998 + b"\r\n"
    assert fit_line_length(raw) is raw


def test_long_8bit_text_becomes_quoted_printable_and_the_rest_is_kept() -> None:
    text = ("Grüße … ".encode("cp1252")) * 3000 + b"\r\nend  "
    short = b"--B\r\nContent-Type: text/plain\r\n\r\nshort \xe9 8bit\r\n--B--\r\nepilogue\r\n"
    raw = (
        HEAD + b'Content-Type: multipart/mixed; boundary="B"\r\n\r\npreamble\r\n--B\r\n'
        b"Content-Type: text/plain; charset=windows-1252\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n" + text + b"\r\n" + short
    )
    out = fit_line_length(raw)
    assert longest_line(raw) == 24_000 and longest_line(out) <= 76
    assert out.count(b"\n") == out.count(b"\r\n")
    assert out.startswith(HEAD) and out.endswith(short)  # headers and other parts as they came
    part = next(email.message_from_bytes(out, policy=email.policy.default).iter_parts())
    assert part["Content-Transfer-Encoding"] == "quoted-printable"
    assert part.get_payload(decode=True).replace(b"\r\n", b"\n") == text.replace(b"\r\n", b"\n")


def test_long_non_text_part_becomes_base64_and_a_bare_message_gets_mime_version() -> None:
    data = bytes(range(1, 256)).replace(b"\r", b"").replace(b"\n", b"") * 40
    raw = b"From: a@acme.example\r\nContent-Type: application/octet-stream\r\n\r\n" + data
    out = fit_line_length(raw)
    assert longest_line(out) <= 76
    msg = email.message_from_bytes(out, policy=email.policy.default)
    assert msg["MIME-Version"] == "1.0" and msg["Content-Transfer-Encoding"] == "base64"
    assert msg.get_payload(decode=True) == data


def test_long_header_line_is_folded_at_white_space() -> None:
    refs = b" ".join(b"<%d.abcdefghij@acme.example>" % i for i in range(400))
    raw = b"From: a@acme.example\r\nReferences: " + refs + b"\r\nTo: b@p.example\r\n\r\nbody\r\n"
    out = fit_line_length(raw)
    assert longest_line(out) <= 998 and out.endswith(b"\r\nTo: b@p.example\r\n\r\nbody\r\n")
    msg = email.message_from_bytes(out, policy=email.policy.compat32)
    assert msg["References"].replace("\r\n", "").encode() == refs  # unfolds to the same field


def test_long_header_line_without_white_space_is_left_alone() -> None:
    raw = b"X-Long: " + b"h" * 2000 + b"\r\n\r\nbody\r\n"
    assert fit_line_length(raw) == raw
