"""A streaming MIME *skeleton* scanner: the structure of a message read piece by piece.

For messages too large to parse whole (issue 15, flat memory), :func:`scan` reads the
message as an iterable of byte chunks (e.g. a sealed object opened chunk by chunk) and
returns its :class:`Skeleton`: the top-level header block, the tree of parts (content
type, filename, disposition, transfer encoding, byte offsets and sizes of every body) and
a bounded prefix of each leaf's body. It never holds a whole body: memory is bounded by
``prefix_limit`` per leaf, ``header_limit`` per header block and ``line_limit`` per line.

Its structure agrees with the standard library's parser (``email.feedparser``) on the
messages it is given to: a boundary line is ``--boundary``, optionally ``--``, then
spaces or tabs; any open boundary ends an inner part; the line ending before a boundary
belongs to the boundary; a header block ends at an empty line or at the first line that
is not a header. Two simplifications, documented and harmless for deciding and sealing:
``message/rfc822`` parts are leaves (the portal keeps an attached message as one
attachment anyway), and a lone CR is not a line ending (SMTP DATA is CRLF).

:func:`body_chunks` re-reads the stream and yields one part's body between its offsets,
so a caller can seal or decode a part without holding it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy

from core.mime_text import MAX_DEPTH, part_filename

PREFIX_LIMIT = 1024 * 1024  # raw body bytes kept per leaf
HEADER_LIMIT = 1024 * 1024  # bytes of one header block kept (the rest is counted only)
LINE_LIMIT = 64 * 1024  # a longer "line" is body text: no boundary or header is that long
TOTAL_PREFIX_LIMIT = 32 * 1024 * 1024  # prefix bytes kept for all leaves together

_HEADER_LINE = re.compile(rb"^(From |[\041-\071\073-\176]*:|[\t ])")
_BLANK = re.compile(rb"^(\r\n|\n)$")


@dataclasses.dataclass
class PartInfo:
    """One part: its headers (parsed), where its body lies and, for a leaf, its prefix."""

    headers: EmailMessage
    header_start: int
    body_start: int = 0
    body_end: int = 0
    prefix: bytes = b""
    children: list[PartInfo] = dataclasses.field(default_factory=list)
    multipart: bool = False  # a multipart whose boundary was seen: it has children
    longest: int = 0  # octets of the body's longest line, without its line ending

    @property
    def content_type(self) -> str:
        return self.headers.get_content_type()

    @property
    def filename(self) -> str:
        return part_filename(self.headers)

    @property
    def disposition(self) -> str | None:
        return self.headers.get_content_disposition()

    @property
    def encoding(self) -> str:
        return str(self.headers.get("Content-Transfer-Encoding", "")).strip().lower()

    @property
    def body_size(self) -> int:
        return self.body_end - self.body_start

    @property
    def truncated(self) -> bool:
        """True when :attr:`prefix` is not the whole body."""
        return len(self.prefix) < self.body_size

    def leaves(self) -> Iterator[PartInfo]:
        """The leaf parts in document order (as the portal lists attachments)."""
        if self.multipart:
            for child in self.children:
                yield from child.leaves()
        else:
            yield self


@dataclasses.dataclass
class Skeleton:
    """A message's structure: ``root`` is the message itself; ``size`` its length."""

    root: PartInfo
    size: int

    @property
    def headers(self) -> EmailMessage:
        return self.root.headers


def _lines(chunks: Iterable[bytes], line_limit: int) -> Iterator[tuple[int, bytes]]:
    """``(offset, line)`` with its line ending; a line longer than ``line_limit`` comes in
    pieces (none of which can be a boundary or a header)."""
    buf = bytearray()
    pos = 0
    for chunk in chunks:
        buf += chunk
        start = 0
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            end = nl + 1
            while end - start > line_limit:
                yield pos, bytes(buf[start : start + line_limit])
                pos += line_limit
                start += line_limit
            yield pos, bytes(buf[start:end])
            pos += end - start
            start = end
        del buf[:start]
        while len(buf) > line_limit:
            yield pos, bytes(buf[:line_limit])
            pos += line_limit
            del buf[:line_limit]
    if buf:
        yield pos, bytes(buf)


def _ending(line: bytes) -> int:
    if line.endswith(b"\r\n"):
        return 2
    return 1 if line.endswith(b"\n") else 0


def _parse_headers(block: bytes, default_type: str) -> EmailMessage:
    msg = BytesParser(policy=default_policy).parsebytes(block + b"\r\n", headersonly=True)
    assert isinstance(msg, EmailMessage)
    if default_type != "text/plain":
        msg.set_default_type(default_type)
    return msg


class _Scanner:
    def __init__(self, prefix_limit: int, header_limit: int, total_prefix_limit: int) -> None:
        self.prefix_limit = prefix_limit
        self.prefix_room = total_prefix_limit
        self.header_limit = header_limit
        # open multiparts, innermost last: (part, boundary regex, seen its first boundary)
        self.stack: list[tuple[PartInfo, re.Pattern[bytes]]] = []
        self.seen: list[bool] = []
        self.state = "headers"
        self.block = bytearray()
        self.header_start = 0
        self.default_type = "text/plain"
        self.current: PartInfo | None = None  # the leaf (or multipart preamble) being read
        self.prev_ending = 0  # the line ending of the last body line (belongs to a boundary)
        self.root: PartInfo | None = None
        self.depth_of: dict[int, int] = {}
        self.after_boundary = -1  # the stack index whose opening boundary was the last line

    def _boundary(self, line: bytes) -> tuple[int, bool] | None:
        """Index in the stack of the boundary this line is, and whether it closes."""
        if not line.startswith(b"--"):
            return None
        for i in range(len(self.stack) - 1, -1, -1):
            m = self.stack[i][1].match(line)
            if m:
                return i, bool(m.group(1))
        return None

    def _end_body(self, at: int) -> None:
        part = self.current
        if part is not None:
            # the line ending before a boundary belongs to it, except after a multipart's
            # own text (the standard library trims an epilogue there, not a payload)
            keep = part.headers.get_content_maintype() == "multipart"
            part.body_end = max(part.body_start, at - (0 if keep else self.prev_ending))
            self.current = None

    def _start_headers(self, offset: int, default_type: str) -> None:
        self.state = "headers"
        self.block = bytearray()
        self.header_start = offset
        self.default_type = default_type

    def _finish_headers(self, body_start: int) -> None:
        headers = _parse_headers(bytes(self.block), self.default_type)
        part = PartInfo(headers=headers, header_start=self.header_start, body_start=body_start)
        part.prefix = bytearray()  # type: ignore[assignment]  # grown in place, bytes at the end
        part.body_end = body_start
        depth = 0
        if self.stack:
            parent = self.stack[-1][0]
            parent.children.append(part)
            depth = self.depth_of[id(parent)] + 1
        else:
            self.root = part
        self.depth_of[id(part)] = depth
        boundary = headers.get_param("boundary") if headers.get_content_maintype() else None
        if (
            headers.get_content_maintype() == "multipart"
            and isinstance(boundary, str)
            and boundary
            and depth < MAX_DEPTH
        ):
            sep = re.escape(b"--" + boundary.encode("ascii", "surrogateescape"))
            self.stack.append((part, re.compile(sep + rb"(--)?[ \t]*(\r\n|\n)?$")))
            self.seen.append(False)
        self.current = part
        self.prev_ending = 0
        self.state = "body"

    def line(self, offset: int, line: bytes) -> None:
        hit = self._boundary(line) if self.stack else None
        if hit is not None:
            if hit[0] == self.after_boundary == len(self.stack) - 1:
                self.header_start = offset + len(line)  # repeated boundary lines: one
                return
            self.after_boundary = -1
            self._on_boundary(offset, line, *hit)
            return
        self.after_boundary = -1
        if self.state == "headers":
            if _BLANK.match(line):
                self._finish_headers(offset + len(line))
                return
            if not _HEADER_LINE.match(line):  # not a header: the body begins here
                self._finish_headers(offset)
                self._body_line(offset, line)
                return
            if len(self.block) < self.header_limit:
                self.block += line
            return
        self._body_line(offset, line)

    def _body_line(self, offset: int, line: bytes) -> None:
        part = self.current
        if part is not None and not part.multipart:
            room = min(self.prefix_limit - len(part.prefix), self.prefix_room)
            if room > 0:
                kept = line[:room]
                part.prefix += kept  # type: ignore[misc]  # a bytearray while scanning
                self.prefix_room -= len(kept)
        self.prev_ending = _ending(line)
        if part is not None:
            part.body_end = offset + len(line)
            part.longest = max(part.longest, len(line) - self.prev_ending)

    def _on_boundary(self, offset: int, line: bytes, index: int, closing: bool) -> None:
        if self.state == "headers":  # a boundary within a header block: headers end here
            self._finish_headers(offset)
            self.prev_ending = 0
        self._end_body(offset)
        # inner multiparts the boundary of an outer one ends
        while len(self.stack) - 1 > index:
            self._close_multipart(offset)
        owner, _ = self.stack[-1]
        if closing:
            if self.seen[-1]:
                owner.body_end = offset + len(line)
            else:  # closed before it opened: its text is one leaf
                owner.multipart = False
                owner.body_end = offset
            self.stack.pop()
            self.seen.pop()
            self.state = "epilogue"
            self.current = None
            return
        if not self.seen[-1]:
            self.seen[-1] = True
            owner.multipart = True
            self.prefix_room += len(owner.prefix)
            owner.prefix = b""
        self.after_boundary = len(self.stack) - 1
        dflt = "message/rfc822" if owner.headers.get_content_subtype() == "digest" else "text/plain"
        self._start_headers(offset + len(line), dflt)

    def _close_multipart(self, offset: int) -> None:
        part, _ = self.stack.pop()
        seen = self.seen.pop()
        if not seen:
            part.multipart = False  # its boundary never came: one leaf
            part.body_end = offset

    def finish(self, size: int) -> PartInfo:
        if self.state == "headers":
            self._finish_headers(size)
        if self.current is not None:
            if self.current is self.root:
                self.current.body_end = size
                self.current = None
            else:  # a part inside a multipart: its last line ending is trimmed
                self._end_body(size)
        while self.stack:
            part, _ = self.stack.pop()
            if not self.seen.pop():
                part.multipart = False
                part.body_end = size
        assert self.root is not None
        _trim(self.root)
        return self.root


def _trim(part: PartInfo) -> None:
    if part.multipart:
        part.prefix = b""
        for child in part.children:
            _trim(child)
    else:
        part.prefix = bytes(part.prefix[: part.body_size])


def scan(
    chunks: Iterable[bytes],
    prefix_limit: int = PREFIX_LIMIT,
    header_limit: int = HEADER_LIMIT,
    line_limit: int = LINE_LIMIT,
    total_prefix_limit: int = TOTAL_PREFIX_LIMIT,
) -> Skeleton:
    """The skeleton of the message ``chunks`` hold, read once, in bounded memory: at most
    ``prefix_limit`` body bytes per leaf and ``total_prefix_limit`` for all of them."""
    scanner = _Scanner(prefix_limit, header_limit, total_prefix_limit)
    size = 0
    for offset, line in _lines(chunks, line_limit):
        scanner.line(offset, line)
        size = offset + len(line)
    return Skeleton(root=scanner.finish(size), size=size)


def body_chunks(chunks: Iterable[bytes], start: int, end: int) -> Iterator[bytes]:
    """The bytes of ``chunks`` between offsets ``start`` and ``end`` (one part's body)."""
    pos = 0
    for chunk in chunks:
        nxt = pos + len(chunk)
        if nxt > start and pos < end:
            yield chunk[max(0, start - pos) : min(len(chunk), end - pos)]
        if nxt >= end:
            return
        pos = nxt


class Base64Lines:
    """Bytes fed in pieces, as base64 lines of 76 characters each ending in CRLF (what a
    whole body encoded at once would give): :meth:`feed` each piece, then :meth:`end`."""

    def __init__(self) -> None:
        self._carry = b""

    def feed(self, piece: bytes) -> bytes:
        data = self._carry + piece
        cut = len(data) - len(data) % 57  # 57 octets make one 76-character line
        self._carry = data[cut:]
        return _b64_lines(data[:cut]) if cut else b""

    def end(self) -> bytes:
        tail, self._carry = self._carry, b""
        return _b64_lines(tail) if tail else b""


def _b64_lines(data: bytes) -> bytes:
    import base64

    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def base64_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """``chunks`` as base64 lines (:class:`Base64Lines`), chunk by chunk."""
    lines = Base64Lines()
    for chunk in chunks:
        yield lines.feed(chunk)
    yield lines.end()
