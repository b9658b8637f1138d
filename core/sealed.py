"""Sealed-object format v1: chunked AES-256-GCM (see docs/FORMAT.md).

Layout: a 16-byte header, then chunks of ``chunk_size`` plaintext bytes, each followed by
its 16-byte GCM tag. Header = magic ``SMO`` + version byte ``0x01`` + chunk size (uint32,
big endian) + 8-byte random nonce prefix. Chunk ``i`` uses nonce = prefix ‖ uint32(i), with
the top bit of the counter set on the last chunk, so truncation and reordering are detected.
Associated data of every chunk = header ‖ ``"sealmail/v1"`` ‖ tenant id ‖ object id.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.errors import IntegrityError

MAGIC = b"SMO"
VERSION = 1
HEADER_SIZE = 16
TAG_SIZE = 16
DEFAULT_CHUNK_SIZE = 64 * 1024
_LAST = 0x80000000
_MAX_CHUNKS = _LAST - 1


def associated_data(header: bytes, tenant_id: str, object_id: str) -> bytes:
    return b"".join([header, b"sealmail/v1\x00", tenant_id.encode(), b"\x00", object_id.encode()])


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    if index > _MAX_CHUNKS:
        raise ValueError("object too large for format v1")
    return prefix + struct.pack(">I", index | (_LAST if last else 0))


def _rechunk(data: Iterable[bytes], size: int) -> Iterator[bytes]:
    buf = bytearray()
    for piece in data:
        if not piece:
            continue
        buf += piece
        while len(buf) >= size:
            yield bytes(buf[:size])
            del buf[:size]
    yield bytes(buf)


def seal_stream(
    key: bytes,
    tenant_id: str,
    object_id: str,
    data: Iterable[bytes],
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Iterator[bytes]:
    """Yield the sealed form of ``data`` piece by piece; memory stays at one chunk."""
    prefix = os.urandom(8)
    header = MAGIC + bytes([VERSION]) + struct.pack(">I", chunk_size) + prefix
    aad = associated_data(header, tenant_id, object_id)
    aes = AESGCM(key)
    yield header
    pending: bytes | None = None
    index = 0
    for chunk in _rechunk(data, chunk_size):
        if pending is not None:
            yield aes.encrypt(_nonce(prefix, index, False), pending, aad)
            index += 1
        pending = chunk
    # _rechunk always yields at least one (possibly empty) final chunk
    assert pending is not None
    yield aes.encrypt(_nonce(prefix, index, True), pending, aad)


def seal_bytes(key: bytes, tenant_id: str, object_id: str, data: bytes) -> bytes:
    return b"".join(seal_stream(key, tenant_id, object_id, [data]))


def _read_exact(fh: BinaryIO, n: int) -> bytes:
    parts = []
    while n:
        piece = fh.read(n)
        if not piece:
            break
        parts.append(piece)
        n -= len(piece)
    return b"".join(parts)


def open_stream(key: bytes, tenant_id: str, object_id: str, fh: BinaryIO) -> Iterator[bytes]:
    """Yield the plaintext of a sealed object read from ``fh``, verifying every chunk.

    Raises :class:`IntegrityError` on any damage, including a missing last chunk."""
    header = _read_exact(fh, HEADER_SIZE)
    if len(header) != HEADER_SIZE or header[:3] != MAGIC:
        raise IntegrityError(f"object {object_id}: not a sealed object")
    if header[3] != VERSION:
        raise IntegrityError(f"object {object_id}: unsupported format version {header[3]}")
    (chunk_size,) = struct.unpack(">I", header[4:8])
    if not 16 <= chunk_size <= 64 * 1024 * 1024:
        raise IntegrityError(f"object {object_id}: bad chunk size")
    prefix = header[8:16]
    aad = associated_data(header, tenant_id, object_id)
    aes = AESGCM(key)
    index = 0
    current = _read_exact(fh, chunk_size + TAG_SIZE)
    while True:
        nxt = (
            _read_exact(fh, chunk_size + TAG_SIZE) if len(current) == chunk_size + TAG_SIZE else b""
        )
        last = not nxt
        if len(current) < TAG_SIZE:
            raise IntegrityError(f"object {object_id}: truncated")
        try:
            yield aes.decrypt(_nonce(prefix, index, last), current, aad)
        except InvalidTag:
            raise IntegrityError(
                f"object {object_id}: chunk {index} failed authentication"
            ) from None
        if last:
            return
        index += 1
        current = nxt


def open_bytes(key: bytes, tenant_id: str, object_id: str, blob: bytes) -> bytes:
    import io

    return b"".join(open_stream(key, tenant_id, object_id, io.BytesIO(blob)))


def sealed_size(plaintext_size: int, chunk_size: int = DEFAULT_CHUNK_SIZE) -> int:
    chunks = max(1, -(-plaintext_size // chunk_size))
    if plaintext_size and plaintext_size % chunk_size == 0:
        chunks += 1  # an exact multiple ends with an empty final chunk
    return HEADER_SIZE + plaintext_size + chunks * TAG_SIZE
