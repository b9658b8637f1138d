"""Re-encoding parts with lines over 998 octets for the next hop."""

from __future__ import annotations

import email
import email.policy

from gateway.delivery.linefold import fit_lines, longest_line

HEAD = b"From: a@acme.example\r\nTo: b@recipient.test\r\nSubject: s\r\nMIME-Version: 1.0\r\n"


def test_short_lines_are_left_byte_for_byte() -> None:
    raw = HEAD + b"Content-Type: text/plain\r\n\r\n" + b"x" * 998 + b"\r\n"
    assert fit_lines(raw) is raw


def test_text_becomes_quoted_printable_and_binary_base64() -> None:
    text = ("caf\u00e9 " * 3000).encode()
    blob = bytes(range(1, 256)).replace(b"\r", b"").replace(b"\n", b"") * 40
    raw = (
        HEAD + b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n" + text + b"\r\n"
        b"--B\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n" + blob + b"\r\n"
        b"--B\r\nContent-Type: text/plain\r\n\r\nshort part\r\n--B--\r\n"
    )
    out = fit_lines(raw)
    assert longest_line(raw) > 10000 and longest_line(out) <= 998
    assert out.startswith(HEAD)
    assert b"Content-Type: text/plain\r\n\r\nshort part\r\n" in out
    parts = [p for p in email.message_from_bytes(out, policy=email.policy.default).walk()][1:]
    assert [p["Content-Transfer-Encoding"] for p in parts] == ["quoted-printable", "base64", None]
    assert parts[0].get_payload(decode=True) == text
    assert parts[1].get_payload(decode=True) == blob
