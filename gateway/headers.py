"""The top-level header block of a raw message, handled as bytes so the body (and every
header we do not touch) keeps its exact original octets — DKIM signatures survive.

Only whole header fields are removed or prepended; nothing is re-serialised.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from email.parser import BytesHeaderParser
from email.policy import default as default_policy

INTERNAL_PREFIX = b"x-sealmail-"


def split_header_block(raw: bytes) -> tuple[bytes, bytes]:
    """``(header block with its final line break, the rest)``; the rest starts with the
    blank line (or is empty when the message has no body)."""
    if raw.startswith((b"\r\n", b"\n")):
        return b"", raw
    for sep in (b"\r\n\r\n", b"\n\n"):
        i = raw.find(sep)
        if i >= 0:
            cut = i + len(sep) // 2
            return raw[:cut], raw[cut:]
    return raw, b""


def header_fields(block: bytes) -> list[bytes]:
    """The header block as a list of fields, each with its continuation lines."""
    fields: list[bytes] = []
    for line in block.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line
        else:
            fields.append(line)
    return fields


def field_name(field: bytes) -> bytes:
    return field.split(b":", 1)[0].strip().lower()


def strip_fields(raw: bytes, prefix: bytes = INTERNAL_PREFIX) -> bytes:
    """``raw`` without the top-level header fields whose name starts with ``prefix``."""
    block, rest = split_header_block(raw)
    fields = header_fields(block)
    kept = [f for f in fields if not field_name(f).startswith(prefix)]
    if len(kept) == len(fields):
        return raw
    return b"".join(kept) + rest


def prepend_field(raw: bytes, name: str, value: str) -> bytes:
    return f"{name}: {value}\r\n".encode("ascii") + raw


def parse_headers(raw: bytes):  # -> email.message.EmailMessage (headers only)
    """The top-level headers parsed with the modern policy; the body is not looked at."""
    block, _ = split_header_block(raw)
    return BytesHeaderParser(policy=default_policy).parsebytes(block + b"\r\n")


def header_value(raw: bytes, name: str) -> str:
    """The first value of header ``name`` (decoded, unfolded), or ``""``."""
    try:
        value = parse_headers(raw).get(name)
    except Exception:  # noqa: BLE001 - a header we cannot parse counts as absent
        return ""
    return str(value).strip() if value is not None else ""


def folded_field(name: str, value: str) -> bytes:
    """The header field ``name: value`` as it goes on the wire: folded, with CRLF, and
    RFC 2047 encoded words for non-ASCII text (``fold_binary`` leaves a short non-ASCII
    value as it is, which cannot be written as ASCII)."""
    from email.policy import SMTP

    return SMTP.header_factory(name, value).fold(policy=SMTP).encode("ascii")


def replace_field(raw: bytes, name: str, value: str) -> bytes:
    """``raw`` with every top-level ``name`` field replaced by one new field (RFC 2047
    encoded and folded as needed) where the first one stood; the rest is untouched."""
    line = folded_field(name, value)
    block, rest = split_header_block(raw)
    out: list[bytes] = []
    placed = False
    wanted = name.lower().encode()
    for f in header_fields(block):
        if field_name(f) == wanted:
            if not placed:
                out.append(line)
                placed = True
            continue
        out.append(f)
    if not placed:
        out.append(line)
    return b"".join(out) + rest


# --- a header block read from a stream (large messages: never held whole) ----------------

FIELD_LIMIT = 1024 * 1024  # bytes of one header field held while deciding what to do with it
_HEADER_LINE = re.compile(rb"(From |[\041-\071\073-\176]*:|[\t ])")


def _is_blank(line: bytes) -> bool:
    return line in (b"\r\n", b"\n")


class HeadSplit:
    """A message read from ``chunks`` as its header block's lines (:meth:`header_lines`,
    the terminating blank line last), then as raw chunks from there (:meth:`rest`).
    Memory: one chunk and one line (a line is at most :data:`FIELD_LIMIT` bytes)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it = iter(chunks)
        self._buf = b""
        self._pos = 0  # where the unread bytes of _buf start
        self.consumed = 0  # bytes of the message handed out as header lines

    def _fill(self) -> bool:
        chunk = next(self._it, None)
        if chunk is None:
            return False
        self._buf = self._buf[self._pos :] + chunk
        self._pos = 0
        return True

    def header_lines(self) -> Iterator[bytes]:
        """The header block's lines with their line ends, the blank line that ends it
        included; stops before the first line that is not a header (the body's)."""
        while True:
            nl = self._buf.find(b"\n", self._pos)
            while nl < 0 and len(self._buf) - self._pos < FIELD_LIMIT and self._fill():
                nl = self._buf.find(b"\n", self._pos)
            end = len(self._buf) if nl < 0 else nl + 1
            end = min(end, self._pos + FIELD_LIMIT)
            line = self._buf[self._pos : end]
            if not line or not (_is_blank(line) or _HEADER_LINE.match(line)):
                return
            self._pos = end
            self.consumed += len(line)
            yield line
            if _is_blank(line):
                return

    def rest(self) -> Iterator[bytes]:
        """Everything after the header lines handed out, as it came."""
        if self._pos < len(self._buf):
            yield self._buf[self._pos :]
        self._buf, self._pos = b"", 0
        yield from self._it


def edit_header_lines(
    lines: Iterable[bytes],
    *,
    drop: Callable[[bytes], bool] = lambda name: name.startswith(INTERNAL_PREFIX),
    replace: dict[bytes, bytes] | None = None,
    add: Iterable[bytes] = (),
    fold: Callable[[bytes], bytes] | None = None,
) -> Iterator[bytes]:
    """A header block's lines (as :meth:`HeadSplit.header_lines` gives them) with the
    fields whose lower-case name ``drop`` accepts removed, each field named in
    ``replace`` replaced by its new field where the first one stood (added at the end when
    there was none), the fields ``add`` added at the end and each line passed through
    ``fold``: what :func:`strip_fields` and :func:`replace_field` do to a whole message,
    in bounded memory (a field is held up to :data:`FIELD_LIMIT` bytes; a longer one is
    judged by its name and passed on line by line)."""
    pending = dict(replace or {})
    fold = fold or (lambda line: line)
    field: list[bytes] = []
    size = 0
    verdict: bytes | bool | None = None  # True keep, False drop, bytes: its replacement

    def judge() -> bytes | bool:
        name = field_name(field[0])
        if name in pending:
            return pending.pop(name)
        if name in (replace or {}):  # a second field of a replaced name
            return False
        return not drop(name)

    def emit(lines_: list[bytes], how: bytes | bool) -> Iterator[bytes]:
        if how is True:
            yield from map(fold, lines_)
        elif isinstance(how, bytes):
            yield how

    for line in lines:
        if _is_blank(line):
            break
        if line[:1] in (b" ", b"\t") and (field or verdict is not None):
            if verdict is None:
                field.append(line)
                size += len(line)
                if size > FIELD_LIMIT:  # a huge field: judged now, passed on line by line
                    verdict = judge()
                    yield from emit(field, verdict)
                    field = []
            elif verdict is True:
                yield fold(line)
            continue
        if field:
            yield from emit(field, judge())
        field, size, verdict = [line], len(line), None
    else:
        line = b""
    if field:
        yield from emit(field, judge())
    yield from pending.values()
    yield from add
    if _is_blank(line):
        yield line


def head_of(chunks: Iterable[bytes], limit: int = 256 * 1024) -> bytes:
    """The header block of the message ``chunks`` hold (blank line included), at most
    ``limit`` bytes of it, reading no further than it (blocking with a blocking source)."""
    head = bytearray()
    for line in HeadSplit(chunks).header_lines():
        head += line[: limit - len(head)]
        if len(head) >= limit:
            break
    return bytes(head)
