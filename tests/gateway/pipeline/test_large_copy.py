"""The clear copy of a large message written from the stream (issue 15, flat memory): the
same bytes as the whole-message path when nothing needs fitting, and the same decoded
content with no line over 998 octets when a part had a longer line, whatever the chunks."""

from __future__ import annotations

import base64
import email
import email.policy
import os
from collections.abc import Iterator

import pytest

from archive import index
from core.line_length import MAX_LINE, fit_line_length, longest_line
from core.mime_stream import scan
from gateway.headers import folded_field, replace_field, strip_fields
from gateway.pipeline.large_copy import QP_PIECE, outbound_chunks
from gateway.pipeline.original import LargeOriginal
from gateway.stamp import stamp, stamp_stream


def _chunked(raw: bytes, size: int) -> Iterator[bytes]:
    return (raw[i : i + size] for i in range(0, len(raw), size))


def _original(raw: bytes, size: int = 4096) -> LargeOriginal:
    skeleton = scan(_chunked(raw, size))
    return LargeOriginal(lambda: _chunked(raw, size), skeleton, b"", index.StreamSummary())


def _copy(raw: bytes, size: int = 4096, replace: dict[bytes, bytes] | None = None) -> bytes:
    return b"".join(outbound_chunks(_original(raw, size), replace or {}))


BLOB = os.urandom(200_000)
LONG_TEXT = ("Zahlen " * 400 + "\tende \r\n").encode() * 3 + b".dot line\r\n" + b"x" * 5000


def _multipart(text: bytes, attachment: bytes) -> bytes:
    return (
        b"From: Alice <alice@acme.example>\r\nTo: bob@partner.example\r\n"
        b"X-Sealmail-Options: expiry=7d\r\nSubject: [secure] Q3\r\n"
        b"Message-ID: <q3@acme.example>\r\nX-Sealmail-Connector: t\r\n"
        b"  continued\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="OUT"\r\n\r\npreamble\r\n--OUT\r\n'
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + text
        + b"\r\n--OUT\r\nContent-Type: application/octet-stream\r\n"
        b'Content-Disposition: attachment; filename="d.bin"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + attachment + b"\r\n--OUT--\r\nepilogue\r\n"
    )


@pytest.mark.parametrize("size", [1, 7, 4096, 1 << 30])
def test_untouched_message_is_the_whole_paths_bytes(size: int) -> None:
    raw = _multipart(b"short lines\r\n.a dot", base64.encodebytes(BLOB).replace(b"\n", b"\r\n"))
    if size == 1:
        raw = raw[:3000] + b"\r\n--OUT--\r\n"  # byte by byte: keep it short
    assert _copy(raw, size) == strip_fields(raw)
    assert b"X-Sealmail" not in _copy(raw, size)


def test_subject_replaced_as_the_whole_path_replaces_it() -> None:
    raw = _multipart(b"text", b"AAAA")
    new = folded_field("Subject", "Q3 figures ü")
    expected = replace_field(strip_fields(raw), "Subject", "Q3 figures ü")
    assert _copy(raw, 100, {b"subject": new}) == expected


def _leaves(raw: bytes) -> list[tuple[str, bytes]]:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    return [
        (p.get_content_type(), p.get_payload(decode=True))
        for p in msg.walk()
        if not p.is_multipart()
    ]


@pytest.mark.parametrize("size", [5, 999, 65536])
def test_long_lines_reencoded_with_the_same_content(size: int) -> None:
    one_line = base64.b64encode(BLOB)  # an attachment as one 266,668-octet line
    raw = _multipart(LONG_TEXT, one_line)
    got = _copy(raw, size)
    whole = fit_line_length(strip_fields(raw))
    assert longest_line(got) <= MAX_LINE
    assert _leaves(got) == _leaves(whole)
    assert _leaves(got)[1][1] == BLOB
    assert b"preamble\r\n" in got and got.endswith(b"--OUT--\r\nepilogue\r\n")
    head = got.split(b"\r\n\r\n", 1)[0]
    assert b"X-Sealmail" not in head and b"Subject: [secure] Q3" in head


def test_single_part_message_with_a_long_line_gets_its_own_encoding() -> None:
    text = ("é" * 3000 + "\n").encode() * 2 + b"tail"
    raw = (
        b"From: a@acme.example\r\nSubject: one part\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
        b"X-Long: " + b"word " * 400 + b"\r\n\r\n" + text
    )
    got = _copy(raw, 333)
    assert longest_line(got) <= MAX_LINE
    msg = email.message_from_bytes(got, policy=email.policy.default)
    assert msg["Content-Transfer-Encoding"] == "quoted-printable"
    assert msg["MIME-Version"] == "1.0"
    assert msg.get_content() == text.decode().replace("\n", "\r\n").replace("\r\r", "\r")
    assert str(msg["X-Long"]).split() == ["word"] * 400  # folded, not cut


def test_one_enormous_text_line_is_encoded_in_pieces() -> None:
    text = b"a" * (3 * QP_PIECE + 17) + b" \r\nnext"
    raw = b"Subject: x\r\nContent-Type: text/plain\r\n\r\n" + text
    got = _copy(raw, 10_000)
    assert longest_line(got) <= MAX_LINE
    msg = email.message_from_bytes(got, policy=email.policy.default)
    assert msg.get_payload(decode=True) == text


@pytest.mark.parametrize("size", [3, 64 * 1024])
def test_streamed_stamp_is_the_whole_stamp(size: int) -> None:
    key = b"k" * 32
    for raw in (_multipart(b"text", b"AAAA"), b"Subject: no id\r\nX-Sealmail-A: 1\r\n\r\nbody"):
        head, stamped = stamp_stream(key, "t_1", lambda raw=raw: _chunked(raw, size))
        assert b"".join(stamped()) == stamp(key, "t_1", raw)
        assert b"".join(stamped()) == stamp(key, "t_1", raw)  # read afresh each time
        assert head == raw[: raw.index(b"\r\n\r\n") + 4]


def test_a_non_ascii_subject_is_replaced_with_encoded_words() -> None:
    # a trigger keyword taken out of "[secure] Grüße" once crashed the whole path's copy
    got = replace_field(b"Subject: [secure] x\r\nFrom: a@b\r\n\r\nbody", "Subject", "Grüße")
    msg = email.message_from_bytes(got, policy=email.policy.default)
    assert got.isascii() and msg["Subject"] == "Grüße" and msg["From"] == "a@b"
