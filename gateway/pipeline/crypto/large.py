"""PGP/MIME and S/MIME copies of a large message, never held whole (issue 15, item 4).

The entity that is encrypted is what :func:`gateway.pipeline.crypto.mime.split` makes of a
small message: the ``Content-*`` header fields (with the protected headers when the tenant
protects the subject), then the original body. For a large message the header part is
built the same way from the header block alone and the body follows as the stored
original's bytes, read chunk by chunk (:class:`Entity`). The ciphertext goes into the
outbox as a stream too (:class:`Spooled`).
"""

from __future__ import annotations

import dataclasses
import io
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from core.mime_stream import body_chunks
from gateway.pipeline.crypto import mime
from gateway.pipeline.original import LargeOriginal

PLACEHOLDER = "=_sealmail_ciphertext_="  # where a built envelope's body goes (cannot occur)


@dataclasses.dataclass(frozen=True)
class Entity:
    """What is encrypted: ``head`` (the entity's header block and blank line), then the
    original body read afresh by ``body``; ``size`` in all; ``outer`` the headers left
    outside."""

    outer: list[tuple[str, object]]
    head: bytes
    body: Callable[[], Iterator[bytes]]
    size: int

    def chunks(self) -> Iterator[bytes]:
        yield self.head
        yield from self.body()


@dataclasses.dataclass(frozen=True)
class LargeSource:
    """A large message to encrypt: its original and its outbound header block (internal
    fields removed, the subject as the recipient sees it)."""

    original: LargeOriginal
    outbound_head: bytes

    @staticmethod
    def fits(original: LargeOriginal) -> bool:
        """Whether the header block was kept whole (it is, unless over 256 KiB)."""
        return original.skeleton.root.body_start <= len(original.head)

    def entity(self, *, protect: bool) -> Entity:
        root, size = self.original.skeleton.root, self.original.skeleton.size
        if not self.fits(self.original):
            raise ValueError("the header block of this message was not kept whole")
        outer, inner = mime.split(self.outbound_head, protect=protect)
        head = mime.to_bytes(inner)
        read = self.original.read

        def body() -> Iterator[bytes]:
            return body_chunks(read(), root.body_start, size)

        return Entity(outer, head, body, len(head) + size - root.body_start)


class ChunkReader(io.RawIOBase):
    """A binary file reading ``chunks`` (for a library that wants a file object)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it = iter(chunks)
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # noqa: ANN001 - a writable buffer
        while not self._buf:
            nxt = next(self._it, None)
            if nxt is None:
                return 0
            self._buf = nxt
        n = min(len(buffer), len(self._buf))
        buffer[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def around_placeholder(envelope: bytes) -> tuple[bytes, bytes]:
    """A built ``envelope`` whose one body line is :data:`PLACEHOLDER`, as the bytes
    before and after that line: the ciphertext is streamed in between."""
    before, found, after = envelope.partition(PLACEHOLDER.encode() + b"\r\n")
    if not found:
        raise ValueError("the envelope lost its placeholder")
    return before, after


@dataclasses.dataclass
class Spooled:
    """An encrypted copy to put in the outbox as a stream: ``chunks`` reads it (blocking);
    :meth:`close` removes what it was spooled to (``path``, if any)."""

    chunks: Callable[[], Iterator[bytes]]
    path: Path | None = None

    def close(self) -> None:
        if self.path is not None:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            self.path = None


def crlf_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Text with LF line ends (gpg's armor) with CRLF ones, chunk by chunk."""
    for chunk in chunks:
        yield chunk.replace(b"\n", b"\r\n")


def read_file(path: Path, size: int = 64 * 1024) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while piece := fh.read(size):
            yield piece
