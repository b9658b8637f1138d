"""The policy's facts from real-world mail: raw 8-bit headers, encoded NULs, unknown
charsets and absurd nesting give readable facts for the rules, never an exception."""

from __future__ import annotations

import pytest

from core.policy import extract_facts

pytestmark = pytest.mark.timeout(30)


def test_raw_and_encoded_headers_are_decoded_for_the_rules() -> None:
    raw = (
        "From: Jürgen <j@acme.example>\r\n".encode()
        + b"Subject: Gr\xfc\xdfe =?x-unknown?q?caf=C3=A9?= =?utf-8?q?nul=00here?=\r\n"
        + b"X-Tag: =?utf-8?q?a=00b?=\r\n\r\nbody\r\n"
    )
    facts = extract_facts(raw)
    assert facts.subject == "Gr\ufffd\ufffde cafénul here"  # adjacent words join
    assert facts.from_header == "Jürgen <j@acme.example>"
    assert facts.header_values("x-tag") == ["a b"]


def test_nesting_two_thousand_deep_gives_facts() -> None:
    depth = 2000
    head = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
        for i in range(depth - 1)
    )
    tail = b"".join(b"--b%d--\r\n" % i for i in reversed(range(depth - 1)))
    raw = b"Subject: deep\r\n" + head + b"Content-Type: text/plain\r\n\r\nbottom\r\n" + tail
    facts = extract_facts(raw)
    assert facts.subject == "deep"
