"""core.mime_text: header values and bodies read whatever bytes they hold, never raising;
the parser's depth is bounded so nothing recurses without end."""

from __future__ import annotations

import pytest

from core.mime_text import (
    MAX_DEPTH,
    NOT_SHOWN_TYPE,
    b64_tolerant,
    clean_lines,
    decode_words,
    header_addresses,
    header_text,
    parse_message,
    part_text,
    parts_not_shown,
    text_of,
)

pytestmark = pytest.mark.timeout(30)


def _msg(*headers: bytes, body: bytes = b"body\r\n"):
    return parse_message(b"\r\n".join(headers) + b"\r\n\r\n" + body)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Subject: Grüße ☃".encode(), "Grüße ☃"),  # raw UTF-8 (RFC 6532)
        ("Subject: Grüße".encode("latin-1"), "Gr\ufffd\ufffde"),  # 8-bit, not UTF-8
        (b"Subject: =?utf-8?q?a=00b?=", "a b"),  # an encoded NUL becomes a space
        (b"Subject: =?x-unknown?q?caf=C3=A9?=", "café"),  # unknown charset read as UTF-8
        (b"Subject: =?iso-8859-1?q?caf=E9?= =?utf-8?b?4piD?=", "café☃"),  # adjacent words
        (b"Subject: =?utf-8?b?4piD!!?=", "☃"),  # junk in base64 skipped
        (b"Subject: =?utf-8?q?=ZZ?=", "=ZZ"),  # a bad escape kept as written
        (b"Subject: a\r\n\tfolded\x01 line", "a folded line"),
    ],
)
def test_header_text_decodes_what_it_can(header: bytes, expected: str) -> None:
    assert header_text(_msg(header), "Subject") == expected


def test_missing_and_duplicate_headers() -> None:
    msg = _msg(b"Subject: first", b"Subject: second", b"From: A <a@x.example>", b"From: b@y")
    assert header_text(msg, "Subject") == "first"
    assert header_text(msg, "Date") == ""
    assert header_addresses(msg, "From", first_only=True) == [("A", "a@x.example")]
    assert header_addresses(msg, "Cc") == []


def test_addresses_with_8bit_and_encoded_names() -> None:
    msg = _msg(
        "To: Bøb <b@x.example>, =?utf-8?q?C=00c?= <c@x.example>".encode(),
        b"Cc: J\xfcrgen <j@x.example>",
        b"Reply-To: not an address at all",
    )
    assert header_addresses(msg, "To") == [("Bøb", "b@x.example"), ("C c", "c@x.example")]
    assert header_addresses(msg, "Cc") == [("J\ufffdrgen", "j@x.example")]
    assert header_addresses(msg, "Reply-To") == [("not an address at all", "")]


def test_text_of_never_raises() -> None:
    assert text_of("\udcff\x00=?utf-8?b?====?=") == "\ufffd"  # an empty word
    assert decode_words("plain") == "plain"
    # a codec that is not a text encoding is never run on the word: read as UTF-8 instead
    assert text_of("=?zlib_codec?q?abc?=") == "abc"


def test_bodies_with_bogus_charset_and_broken_encodings() -> None:
    bogus = _msg(b"Content-Type: text/plain; charset=bogus", body=b"caf\xe9\r\n")
    assert part_text(bogus) == "caf\ufffd\r\n"
    b64 = _msg(
        b"Content-Type: text/plain; charset=utf-8",
        b"Content-Transfer-Encoding: base64",
        body=b"SGVsbG8gd29y!!*bGQ\r\n",
    )
    assert part_text(b64) == "Hello world"
    assert b64_tolerant(b"=") == b"" and b64_tolerant(b"QQQQx") == b"A\x04\x10"
    assert clean_lines("a\x00b\r\n\tc\x1b") == "ab\r\n\tc"


def _nested(depth: int) -> bytes:
    head = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
        for i in range(depth - 1)
    )
    tail = b"".join(b"--b%d--\r\n" % i for i in reversed(range(depth - 1)))
    return head + b"Content-Type: text/plain\r\n\r\nbottom\r\n" + tail


@pytest.mark.parametrize("depth", [MAX_DEPTH, 2000, 20_000])
def test_nesting_is_bounded(depth: int) -> None:
    raw = _nested(depth)
    msg = parse_message(raw)
    parts = list(msg.walk())  # recursive in the standard library: bounded depth keeps it safe
    assert len(parts) == min(depth, MAX_DEPTH + 1)  # + the part holding the rest
    assert msg.as_bytes().count(b"bottom") == 1  # nothing lost: the deep rest is kept
    if depth > MAX_DEPTH:
        assert parts_not_shown(msg) == 1 and parts[-1].get_content_type() == NOT_SHOWN_TYPE
        assert b"--b%d--" % (depth - 2) in parts[-1].get_payload(decode=True)  # the deepest
    else:
        assert parts_not_shown(msg) == 0 and part_text(parts[-1]) == "bottom"
