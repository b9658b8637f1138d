"""Delivery of a large object as a stream: the loop-stamped message read from the vault
chunk by chunk and written to the next hop as SMTP DATA in pieces, never held whole.

aiosmtplib's ``SMTP.data`` takes the whole message (it normalizes line ends, dot-stuffs
and appends the terminator over the complete bytes, then writes them in one call), so
:func:`send_data` speaks DATA itself on the client's connection, under the connection's
command lock like aiosmtplib's own commands: ``DATA``, the ``354``, the message with bare
CR and LF made CRLF and a leading dot doubled on every line (RFC 5321 4.5.2; the state is
carried across chunk ends by :class:`DotStuffer`), each piece written when the transport
has room (flow control), then ``.`` and the reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
from collections.abc import Callable, Iterator

import aiosmtplib
from aiosmtplib.response import SMTPResponse

STREAM_ABOVE = 4 * 1024 * 1024  # an object above this many bytes is sent as a stream

_LINE_ENDS = re.compile(rb"\r\n|\n|\r(?!\n)")  # as aiosmtplib normalizes a whole message


@dataclasses.dataclass(frozen=True)
class Streamed:
    """A message to send read afresh at each attempt: ``head`` is its header block (for a
    delay or failure notice), ``chunks`` reads it (blocking: one chunk at a time in a
    thread)."""

    head: bytes
    chunks: Callable[[], Iterator[bytes]]
    size: int


Payload = bytes | Streamed  # what a transaction sends: a small message whole, or a stream


class DotStuffer:
    """SMTP DATA encoding of a message fed in pieces: the same bytes aiosmtplib sends for
    the whole message (:meth:`feed` each piece, then :meth:`end`)."""

    def __init__(self) -> None:
        self._cr = False  # the last piece ended with CR: a line end, or half of CRLF
        self._line_start = True

    def feed(self, piece: bytes) -> bytes:
        if self._cr:
            piece = b"\r" + piece
            self._cr = False
        if piece.endswith(b"\r"):
            piece = piece[:-1]
            self._cr = True
        if not piece:
            return b""
        data = _LINE_ENDS.sub(b"\r\n", piece).replace(b"\n.", b"\n..")
        if self._line_start and data[:1] == b".":
            data = b"." + data
        self._line_start = data.endswith(b"\n")
        return data

    def end(self) -> bytes:
        """The rest: a held-back CR as a line end, a last line end, the terminator."""
        tail = b"\r\n" if self._cr or not self._line_start else b""
        return tail + b".\r\n"


async def send_data(client: aiosmtplib.SMTP, payload: Streamed) -> SMTPResponse:
    """DATA with the message streamed; :class:`aiosmtplib.SMTPDataError` on a refusal as
    ``SMTP.data`` raises it. On any failure midway the connection is closed (the next hop
    has part of a message and no end: it drops it)."""
    protocol = client.protocol
    lock = getattr(protocol, "_command_lock", None)
    if protocol is None or lock is None:
        raise aiosmtplib.SMTPServerDisconnected("Connection lost")
    timeout = client.timeout
    pieces = payload.chunks()
    stuffer = DotStuffer()
    try:
        async with lock:
            protocol._response_pending = True
            protocol.write(b"DATA\r\n")
            start = await protocol.read_response(timeout=timeout)
            if start.code != aiosmtplib.SMTPStatus.start_input:
                raise aiosmtplib.SMTPDataError(start.code, start.message)
            while (piece := await asyncio.to_thread(next, pieces, None)) is not None:
                protocol.write(stuffer.feed(piece))
                await asyncio.wait_for(protocol._drain_helper(), timeout)
            protocol._response_pending = True
            protocol.write(stuffer.end())
            response = await protocol.read_response(timeout=timeout)
    except aiosmtplib.SMTPDataError:
        raise  # refused before any byte of the message was sent: the connection is fine
    except BaseException:
        client.close()
        raise
    finally:
        with contextlib.suppress(ValueError):  # still running in its thread (cancelled)
            pieces.close()
    if response.code != aiosmtplib.SMTPStatus.completed:
        raise aiosmtplib.SMTPDataError(response.code, response.message)
    return response
