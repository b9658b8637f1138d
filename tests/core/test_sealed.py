"""Sealed-object format v1: round trips, tamper detection, bounded memory."""

from __future__ import annotations

import gc
import hashlib
import io
import os
import resource
import struct
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import sealed
from core.errors import IntegrityError

KEY = bytes(range(32))
TID, OID = "t_tenant", "o_object"
CS = 1024  # a small chunk size keeps the edge cases cheap


def seal(data: bytes, chunk_size: int = CS, key: bytes = KEY) -> bytes:
    return b"".join(sealed.seal_stream(key, TID, OID, [data], chunk_size=chunk_size))


def open_(blob: bytes, tenant: str = TID, obj: str = OID, key: bytes = KEY) -> bytes:
    return sealed.open_bytes(key, tenant, obj, blob)


@pytest.mark.parametrize("size", [0, 1, CS - 1, CS, CS + 1, 2 * CS, 3 * CS + 17])
def test_round_trip_at_chunk_edges(size: int) -> None:
    data = os.urandom(size)
    blob = seal(data)
    assert open_(blob) == data
    assert len(blob) == sealed.sealed_size(size, CS)
    assert blob[:3] == b"SMO" and blob[3] == 1
    assert len(data) < 16 or data not in blob  # short inputs may occur by chance


def test_round_trip_several_megabytes_default_chunk() -> None:
    data = os.urandom(5 * 1024 * 1024 + 123)
    blob = sealed.seal_bytes(KEY, TID, OID, data)
    assert len(blob) == sealed.sealed_size(len(data))
    assert sealed.open_bytes(KEY, TID, OID, blob) == data
    pieces = list(sealed.open_stream(KEY, TID, OID, io.BytesIO(blob)))
    assert max(len(p) for p in pieces) == sealed.DEFAULT_CHUNK_SIZE


def test_two_seals_of_the_same_data_differ() -> None:
    data = b"same content" * 100
    a, b = seal(data), seal(data)
    assert a != b and a[8:16] != b[8:16]  # fresh nonce prefix
    assert open_(a) == open_(b) == data


@settings(max_examples=150, deadline=None)
@given(
    data=st.binary(max_size=6000),
    chunk_size=st.integers(min_value=16, max_value=700),
    cuts=st.lists(st.integers(min_value=0, max_value=6000), max_size=8),
)
def test_round_trip_any_size_any_chunking(data: bytes, chunk_size: int, cuts: list[int]) -> None:
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    pieces = [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    blob = b"".join(sealed.seal_stream(KEY, TID, OID, pieces, chunk_size=chunk_size))
    assert len(blob) == sealed.sealed_size(len(data), chunk_size)
    assert open_(blob) == data


@settings(max_examples=150, deadline=None)
@given(
    data=st.binary(min_size=0, max_size=3000),
    chunk_size=st.integers(min_value=16, max_value=300),
    where=st.integers(min_value=0),
    bit=st.integers(min_value=0, max_value=7),
)
def test_any_single_bit_flip_is_detected(
    data: bytes, chunk_size: int, where: int, bit: int
) -> None:
    blob = bytearray(seal(data, chunk_size))
    blob[where % len(blob)] ^= 1 << bit
    with pytest.raises(IntegrityError):
        open_(bytes(blob))


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=3000), cut=st.integers(min_value=1))
def test_any_truncation_is_detected(data: bytes, cut: int) -> None:
    blob = seal(data, 64)
    with pytest.raises(IntegrityError):
        open_(blob[: len(blob) - 1 - cut % len(blob)])


def chunks_of(blob: bytes, chunk_size: int = CS) -> list[bytes]:
    body = blob[sealed.HEADER_SIZE :]
    step = chunk_size + sealed.TAG_SIZE
    return [body[i : i + step] for i in range(0, len(body), step)]


def test_dropping_the_last_chunk_at_a_boundary_is_detected() -> None:
    for size in (3 * CS, 3 * CS + 5):  # the last chunk is empty, or short
        blob = seal(os.urandom(size))
        parts = chunks_of(blob)
        assert len(parts) == 4
        with pytest.raises(IntegrityError):
            open_(blob[: sealed.HEADER_SIZE] + b"".join(parts[:-1]))


def test_reordered_or_repeated_chunks_are_detected() -> None:
    blob = seal(os.urandom(3 * CS + 100))
    header, parts = blob[: sealed.HEADER_SIZE], chunks_of(blob)
    for order in ([1, 0, 2, 3], [0, 2, 1, 3], [0, 0, 1, 2, 3], [0, 1, 2, 2, 3]):
        with pytest.raises(IntegrityError):
            open_(header + b"".join(parts[i] for i in order))


def test_chunk_from_another_object_is_detected() -> None:
    a, b = seal(os.urandom(2 * CS + 1)), seal(os.urandom(2 * CS + 1))
    pa, pb = chunks_of(a), chunks_of(b)
    with pytest.raises(IntegrityError):
        open_(a[: sealed.HEADER_SIZE] + pa[0] + pb[1] + pa[2])


def test_trailing_bytes_are_detected() -> None:
    blob = seal(os.urandom(CS + 10))
    for extra in (b"\x00", os.urandom(CS + 40)):
        with pytest.raises(IntegrityError):
            open_(blob + extra)


def test_identity_is_bound_in() -> None:
    blob = seal(b"for tenant TID, object OID only")
    with pytest.raises(IntegrityError):
        open_(blob, tenant="t_other")
    with pytest.raises(IntegrityError):
        open_(blob, obj="o_other")
    with pytest.raises(IntegrityError):
        open_(blob, key=os.urandom(32))
    # "tenant\0object" boundaries cannot be shifted
    with pytest.raises(IntegrityError):
        open_(blob, tenant=TID + "\x00o", obj=OID[1:])


@pytest.mark.parametrize(
    "mangle",
    [
        lambda b: b"XMO" + b[3:],  # magic
        lambda b: b[:3] + b"\x02" + b[4:],  # version
        lambda b: b[:4] + struct.pack(">I", 8) + b[8:],  # chunk size too small
        lambda b: b[:4] + struct.pack(">I", 2048) + b[8:],  # chunk size changed (in AAD)
        lambda b: b[:10],  # header cut short
        lambda b: b"",
    ],
)
def test_bad_headers_are_refused(mangle) -> None:  # noqa: ANN001
    with pytest.raises(IntegrityError):
        open_(mangle(seal(b"x" * 3000)))


def _pieces(total: int, piece: int = 64 * 1024) -> Iterator[bytes]:
    block = os.urandom(piece)
    for _ in range(total // piece):
        yield block


def _rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def test_sealing_100_mb_keeps_memory_bounded() -> None:
    total = 100 * 1024 * 1024
    gc.collect()
    rss_before = _rss_bytes()
    tracemalloc.start()
    try:
        digest = hashlib.sha256()
        written = 0
        for piece in sealed.seal_stream(KEY, TID, OID, _pieces(total, 10_000)):
            digest.update(piece)
            written += len(piece)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert written == sealed.sealed_size(total - total % 10_000)
    assert peak < 2 * 1024 * 1024, f"peak Python allocation {peak} bytes"
    assert _rss_bytes() - rss_before < 40 * 1024 * 1024


def test_opening_a_large_file_keeps_memory_bounded(tmp_path: Path) -> None:
    total = 32 * 1024 * 1024
    path = tmp_path / "big.sealed"
    with path.open("wb") as fh:
        for piece in sealed.seal_stream(KEY, TID, OID, _pieces(total)):
            fh.write(piece)
    tracemalloc.start()
    try:
        n = 0
        with path.open("rb") as fh:
            for piece in sealed.open_stream(KEY, TID, OID, fh):
                n += len(piece)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == total
    assert peak < 2 * 1024 * 1024, f"peak Python allocation {peak} bytes"
