"""The SMTP DATA stream, decoded in bulk chunks instead of line by line.

Stock aiosmtpd awaits one ``readuntil`` per line; for 100 KB-1 MB messages that costs
several times the rest of the work. :class:`DataDecoder` takes whatever the socket has
and does the same job with bytes methods that run in C, falling back to a per-line path
only for the unusual chunks that need it. Rules (RFC 5321 4.1.1.4, 4.5.2, 4.5.3.1.6):

- The end of data is exactly ``CRLF . CRLF`` (or ``. CRLF`` as the first line).
- A bare CR or bare LF elsewhere ends a line and is normalised to CRLF, so what we store
  and later relay has one unambiguous line structure (the SMTP smuggling family,
  CVE-2023-51764). A lone dot next to a bare CR or LF (``\\n.\\r\\n``, ``\\r\\n.\\n``, ...)
  is what a smuggling attempt looks like: the message is rejected.
- A line longer than :data:`MAX_LINE_OCTETS` (64 KiB as sent, without its CRLF) is
  rejected; so is a message over ``max_size``. RFC 5321 allows 998, but real
  senders (Outlook's HTML, generated reports) send longer lines and Postfix accepts them;
  what we relay onwards is re-encoded to fit 998 (:mod:`core.line_length`). The bound
  keeps what one session buffers for an unfinished line small. Either way the rest of the
  data is read (and thrown away) up to the real end, so the reply lands where the client
  expects it.
- A leading dot is removed from every line (transparency).
"""

from __future__ import annotations

import enum
import re

CRLF = b"\r\n"
MAX_LINE_OCTETS = 65536  # the longest line accepted as sent (a transparency dot included)
MAX_LINE = MAX_LINE_OCTETS + 2  # + CRLF
_LINE = re.compile(rb"([^\r\n]*)(\r\n|\r|\n)")


class DataState(enum.Enum):
    NOMINAL = "nominal"
    TOO_LONG = "too long"
    TOO_BIG = "too big"
    BARE_NEWLINE = "bare newline"


class DataDecoder:
    """Feed raw DATA bytes; :meth:`feed` returns the bytes after the terminator once it
    has been seen (they belong to the next command), else ``None``."""

    def __init__(self, max_size: int | None = None, max_line: int = MAX_LINE) -> None:
        self.max_size = max_size or None
        self.max_content = max_line - 2  # without the line break
        self.state = DataState.NOMINAL
        self.done = False
        self.size = 0
        self.chunks: list[bytes] = []
        self._pending = b""  # an incomplete last line (no break yet, or ending in one CR)
        self._prev_crlf = True  # the previous line ended with a real CRLF
        self._mid_line = False  # the pending part of an over-long line was thrown away

    @property
    def message(self) -> bytes:
        return b"".join(self.chunks)

    def take(self) -> list[bytes]:
        """The decoded bytes kept since the last call (for streaming them onwards)."""
        chunks, self.chunks = self.chunks, []
        return chunks

    def feed(self, data: bytes) -> bytes | None:
        if self.done:
            raise RuntimeError("data already complete")
        buf = self._pending + data if self._pending else data
        # A CR that is not the last byte is certainly a line break (alone or before LF);
        # a final CR may be the first half of a CRLF still in flight.
        end = max(buf.rfind(b"\n"), buf.rfind(b"\r", 0, len(buf) - 1)) + 1
        region, rest = buf[:end], buf[end:]
        if region:
            stop = self._lines(region)
            if stop >= 0:
                self.done = True
                self._pending = b""
                return region[stop:] + rest
        if len(rest) - rest.endswith(b"\r") > self.max_content:
            self._fail(DataState.TOO_LONG)
            rest = b"\r" if rest.endswith(b"\r") else b""
            self._mid_line = True
        self._pending = rest
        return None

    def _fail(self, state: DataState) -> None:
        if self.state is DataState.NOMINAL:
            self.state = state
        self.chunks = []

    def _keep(self, body: bytes) -> None:
        self.size += len(body)
        if self.max_size is not None and self.size > self.max_size:
            self._fail(DataState.TOO_BIG)
        if self.state is DataState.NOMINAL and body:
            self.chunks.append(body)

    def _lines(self, region: bytes) -> int:
        """Consume complete lines; the index just past the terminator, or -1."""
        crlfs = region.count(CRLF)
        if (
            self._prev_crlf
            and not self._mid_line
            and region.count(b"\n") == crlfs
            and region.count(b"\r") == crlfs
        ):
            return self._fast(region)
        return self._slow(region)

    def _fast(self, region: bytes) -> int:
        """Every line break in ``region`` is CRLF and it starts at a line start."""
        if region.startswith(b".\r\n"):
            dot, stop = 0, 3
        else:
            i = region.find(b"\r\n.\r\n")
            dot, stop = (i + 2, i + 5) if i >= 0 else (len(region), -1)
        body = region[:dot]
        if self.state is DataState.NOMINAL and len(body) > self.max_content:
            if max(map(len, body.split(CRLF))) > self.max_content:
                self._fail(DataState.TOO_LONG)
        if body.startswith(b"."):
            body = body[1:]
        self._keep(body.replace(b"\r\n.", CRLF))
        return stop

    def _slow(self, region: bytes) -> int:
        out: list[bytes] = []
        stop = -1
        for m in _LINE.finditer(region):
            content, brk = m.group(1), m.group(2)
            crlf = brk == CRLF
            if self._mid_line:  # the tail of an over-long line
                self._mid_line = False
            elif content == b".":
                if crlf and self._prev_crlf:
                    stop = m.end()
                    break
                self._fail(DataState.BARE_NEWLINE)
            else:
                if len(content) > self.max_content:
                    self._fail(DataState.TOO_LONG)
                out.append(content[1:] if content.startswith(b".") else content)
                out.append(CRLF)
            self._prev_crlf = crlf
        self._keep(b"".join(out))
        return stop
