"""The copy of a large message for the next hop (``clear`` and ``tls``), written from the
stored original's stream: never held whole.

What :meth:`gateway.pipeline.context.Context.outbound_raw` and :func:`core.outbox.post` do
to a small message is done here on the way, in bounded memory: internal ``X-Sealmail-*``
fields removed from the header block, the subject replaced when a trigger keyword was
taken out of it, header lines over 998 octets folded, and every leaf part with a body line
over 998 octets re-encoded (text as quoted-printable, anything else as base64: the rules of
:mod:`core.line_length`), decoded and encoded slice by slice. Every other byte is copied as
it came, so a DKIM signature over an untouched message still verifies.
"""

from __future__ import annotations

import binascii
from collections.abc import Iterable, Iterator

from core.line_length import MAX_LINE, fold_header_lines
from core.mime_stream import PartInfo, base64_lines
from gateway.headers import HeadSplit, edit_header_lines
from gateway.pipeline.original import LargeOriginal, decode

QP_PIECE = 64 * 1024  # a decoded text line longer than this is encoded in pieces (soft breaks)
_CTE = b"content-transfer-encoding"


class _Cursor:
    """A chunk stream read up to absolute offsets, in order."""

    def __init__(self, chunks: Iterable[bytes], pos: int) -> None:
        self._it = iter(chunks)
        self._buf = b""
        self.pos = pos

    def upto(self, end: int) -> Iterator[bytes]:
        """The bytes from the current offset up to ``end`` (all that is left for ``-1``)."""
        while end < 0 or self.pos < end:
            if not self._buf:
                self._buf = next(self._it, b"")
                if not self._buf:
                    return
            take = self._buf if end < 0 else self._buf[: end - self.pos]
            self._buf = self._buf[len(take) :]
            self.pos += len(take)
            yield take


def _fold(line: bytes) -> bytes:
    body = line.rstrip(b"\r\n")
    if len(body) <= MAX_LINE:
        return line
    return fold_header_lines(body) + line[len(body) :]


def _qp(decoded: Iterable[bytes]) -> Iterator[bytes]:
    """Text as quoted-printable with CRLF line ends (as :func:`core.line_length` encodes a
    whole part: line breaks kept, lines of at most 76 octets)."""

    def encode(data: bytes) -> bytes:
        data = data.replace(b"\r\n", b"\n")
        qp = binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)
        return qp.replace(b"\n", b"\r\n")

    carry = b""
    for chunk in decoded:
        data = carry + chunk
        cut = data.rfind(b"\n") + 1
        if cut:
            yield encode(data[:cut])
            data = data[cut:]
        while len(data) > QP_PIECE:  # one enormous line: pieces joined by soft breaks
            piece = QP_PIECE - (data[QP_PIECE - 1 : QP_PIECE] == b"\r")
            yield encode(data[:piece]) + b"=\r\n"
            data = data[piece:]
        carry = data
    if carry:
        yield encode(carry)


def _encoding_for(part: PartInfo) -> bytes:
    return b"quoted-printable" if part.content_type.startswith("text/") else b"base64"


def _reencoded(part: PartInfo, raw: Iterable[bytes]) -> Iterator[bytes]:
    decoded = decode(raw, part.encoding)
    return _qp(decoded) if _encoding_for(part) == b"quoted-printable" else base64_lines(decoded)


def needs_fitting(original: LargeOriginal) -> list[PartInfo]:
    """The leaf parts with a body line over 998 octets, in document order."""
    return [leaf for leaf in original.skeleton.root.leaves() if leaf.longest > MAX_LINE]


def outbound_chunks(original: LargeOriginal, replace: dict[bytes, bytes]) -> Iterator[bytes]:
    """The copy for the next hop, chunk by chunk (blocking: run it in a thread, e.g. the
    one that seals it). ``replace``: header fields to put in place of the message's own
    (lower-case name -> the new field with its CRLF), e.g. the subject without a trigger
    keyword."""
    root = original.skeleton.root
    fit = needs_fitting(original)
    add: list[bytes] = []
    drop = _internal
    if root in fit:  # a single-part message: its own header block names the encoding
        add.append(b"Content-Transfer-Encoding: " + _encoding_for(root) + b"\r\n")
        if "MIME-Version" not in root.headers:
            add.append(b"MIME-Version: 1.0\r\n")
        drop = _internal_or_cte
    split = HeadSplit(original.read())
    yield from edit_header_lines(
        split.header_lines(), drop=drop, replace=replace, add=add, fold=_fold
    )
    cursor = _Cursor(split.rest(), split.consumed)
    for part in fit:
        if part.header_start < cursor.pos or part.body_start < cursor.pos:
            if part is root and cursor.pos == root.body_start:
                yield from _reencoded(part, cursor.upto(part.body_end))
            continue  # (the scanner and the header split disagree: left as it is)
        yield from cursor.upto(part.header_start)
        head = HeadSplit(cursor.upto(part.body_start))
        cte = b"Content-Transfer-Encoding: " + _encoding_for(part) + b"\r\n"
        yield from edit_header_lines(head.header_lines(), drop=_cte, add=[cte], fold=_fold)
        yield from head.rest()
        yield from _reencoded(part, cursor.upto(part.body_end))
    yield from cursor.upto(-1)


def _internal(name: bytes) -> bool:
    return name.startswith(b"x-sealmail-")


def _cte(name: bytes) -> bool:
    return name == _CTE


def _internal_or_cte(name: bytes) -> bool:
    return _internal(name) or name == _CTE
