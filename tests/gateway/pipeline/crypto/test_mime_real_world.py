"""Splitting real-world mail for PGP/MIME and S/MIME: duplicate headers, raw 8-bit headers
and absurd nesting are wrapped, never an exception (the first of a once-only header counts)."""

from __future__ import annotations

from email.message import MIMEPart

import pytest

from core.mime_text import MAX_DEPTH
from gateway.pipeline.crypto import mime

pytestmark = pytest.mark.timeout(30)


def _wrap(raw: bytes, protect: bool) -> tuple[bytes, bytes]:
    outer, inner = mime.split(raw, protect=protect)
    ciphertext = MIMEPart()
    ciphertext.set_content(b"sealed", maintype="application", subtype="octet-stream")
    return mime.to_bytes(inner), mime.envelope(outer, "multipart/encrypted", [ciphertext])


@pytest.mark.parametrize("protect", [False, True])
def test_duplicate_and_8bit_headers(protect: bool) -> None:
    raw = (
        b"From: First <a@acme.example>\r\nFrom: Second <b@acme.example>\r\n"
        + "To: Bøb <bob@x.example>\r\n".encode()
        + b"Subject: Gr\xfc\xdfe\r\nSubject: again\r\n"
        + b"Content-Type: text/plain; charset=utf-8\r\nContent-Type: text/html\r\n\r\nhi\r\n"
    )
    inner, out = _wrap(raw, protect)
    assert out.count(b"\nFrom:") + out.startswith(b"From:") == 1 and b"First" in out
    assert b"Second" not in out and b"again" not in out
    assert inner.count(b"Content-Type:") == 1 and inner.rstrip().endswith(b"hi")


def test_deep_nesting_is_wrapped_whole() -> None:
    depth = 2000
    head = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
        for i in range(depth - 1)
    )
    tail = b"".join(b"--b%d--\r\n" % i for i in reversed(range(depth - 1)))
    raw = b"From: a@acme.example\r\n" + head + b"Content-Type: text/plain\r\n\r\nbottom\r\n" + tail
    inner, _out = _wrap(raw, protect=True)
    assert inner.count(b"bottom") == 1  # the part below the bound is kept as it came
    assert b"--b%d--" % (depth - 2) in inner and depth > MAX_DEPTH
