"""Exporting a search result or a whole tenant: an mbox (mboxrd) or a zip of ``.eml`` files
with ``manifest.json`` and ``manifest.csv``, produced as a stream of byte chunks.

Memory stays bounded whatever the size of the export or of one message: entries are read
in keyset-paged batches, each original is decrypted chunk by chunk
(:meth:`core.storage.vault.Vault.stream`), the mbox quoting works line by line with a bounded
carry, and the zip is written by :mod:`zipfile` to a write-only sink (no seeking: data
descriptors, ZIP64 for every member) that is drained after every chunk. The SHA-256 of each
original is computed as it streams and compared with the digest sealed in its meta when the
message was archived; the manifest says whether they matched.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import hashlib
import io
import json
import re
import time
import zipfile
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from sqlalchemy import and_, func, or_, select

from archive import index
from archive.models import ArchiveEntry
from archive.search import Query, open_meta, ordered, statement
from core.errors import IntegrityError, NotFound
from core.services import Services

FORMATS = ("mbox", "zip")
ZIP_LEVEL = 1
BATCH = 200
MAX_CARRY = 64 * 1024  # longest partial line held back by the mbox quoting
_FROM_LINE = re.compile(rb"^>*From ")
MANIFEST_FIELDS = (
    "file",
    "entry_id",
    "source",
    "message_id",
    "received_at",
    "size",
    "sha256",
    "sealed_sha256",
    "verified",
    "error",
)

Progress = Callable[[int, int], None]  # (entries done, bytes of originals done)


@dataclasses.dataclass
class ExportStats:
    entries: int = 0
    bytes: int = 0  # plaintext bytes of the originals
    mismatched: int = 0  # digest differs from the sealed one
    failed: int = 0  # could not be opened


async def count(services: Services, tenant_id: str, query: Query) -> int:
    stmt = statement(services, tenant_id, query)
    async with services.db.session() as s:
        return int(
            (await s.execute(select(func.count()).select_from(stmt.subquery()))).scalar_one()
        )


async def entries(
    services: Services, tenant_id: str, query: Query, batch: int = BATCH
) -> AsyncIterator[ArchiveEntry]:
    """Every matching entry, newest first, fetched ``batch`` at a time (keyset paging, so
    entries added meanwhile neither repeat nor shift the rest)."""
    last: tuple[float, str] | None = None
    while True:
        stmt = statement(services, tenant_id, query)
        if last is not None:
            at, eid = last
            stmt = stmt.where(
                or_(
                    ArchiveEntry.received_at < at,
                    and_(ArchiveEntry.received_at == at, ArchiveEntry.id < eid),
                )
            )
        async with services.db.session() as s:
            rows = list((await s.execute(ordered(stmt).limit(batch))).scalars().all())
        for e in rows:
            yield e
        if len(rows) < batch:
            return
        last = (rows[-1].received_at, rows[-1].id)


@dataclasses.dataclass
class _Item:
    entry: ArchiveEntry
    meta: index.Summary | None
    chunks: AsyncIterator[bytes] | None
    error: str = ""


async def _items(services: Services, tenant_id: str, query: Query) -> AsyncIterator[_Item]:
    async for e in entries(services, tenant_id, query):
        async with services.db.session() as s:
            meta = await open_meta(services, s, e)
            try:
                chunks = await services.vault.stream(s, tenant_id, e.object_id)
            except NotFound as exc:
                yield _Item(e, meta, None, str(exc))
                continue
            yield _Item(e, meta, chunks)


class _Digest:
    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.size = 0

    def add(self, data: bytes) -> bytes:
        self.sha.update(data)
        self.size += len(data)
        return data


def _mbox_from_line(item: _Item) -> bytes:
    sender = ""
    if item.meta is not None:
        sender = item.meta.envelope_from or item.meta.sender
    sender = re.sub(r"\s+", "", sender) or "MAILER-DAEMON"
    stamp = time.asctime(time.gmtime(item.entry.received_at))
    return f"From {sender} {stamp}\n".encode("utf-8", "replace")


class MboxQuoter:
    """mboxrd quoting, incremental: every line matching ``^>*From `` gets one more ``>``;
    CRLF line ends become LF. A partial line longer than ``MAX_CARRY`` is passed on once it
    can no longer be a From line, so memory stays bounded."""

    def __init__(self) -> None:
        self.carry = b""
        self.at_line_start = True
        self.last = b"\n"

    def _line(self, line: bytes) -> bytes:
        if self.at_line_start and _FROM_LINE.match(line):
            line = b">" + line
        return line

    def feed(self, data: bytes) -> bytes:
        out: list[bytes] = []
        data = self.carry + data
        lines = data.split(b"\n")
        self.carry = lines.pop()
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            out.append(self._line(line) + b"\n")
            self.at_line_start = True
        if len(self.carry) > MAX_CARRY and self.carry.strip(b">"):
            keep = self.carry[-1:]  # may be the CR of a CRLF
            out.append(self._line(self.carry[:-1]))
            self.at_line_start = False
            self.carry = keep
        result = b"".join(out)
        if result:
            self.last = result[-1:]
        return result

    def close(self) -> bytes:
        tail = b""
        if self.carry:
            line = self.carry[:-1] if self.carry.endswith(b"\r") else self.carry
            tail = self._line(line) + b"\n"
        elif self.last != b"\n":
            tail = b"\n"
        self.carry, self.at_line_start, self.last = b"", True, b"\n"
        return tail + b"\n"  # the blank line before the next From_ line


async def export_mbox(
    services: Services,
    tenant_id: str,
    query: Query,
    stats: ExportStats | None = None,
    progress: Progress | None = None,
) -> AsyncIterator[bytes]:
    stats = stats if stats is not None else ExportStats()
    async for item in _items(services, tenant_id, query):
        if item.chunks is None:
            stats.failed += 1
            continue
        quoter, digest = MboxQuoter(), _Digest()
        yield _mbox_from_line(item)
        try:
            async for chunk in item.chunks:
                piece = quoter.feed(digest.add(chunk))
                if piece:
                    yield piece
        except IntegrityError:
            stats.failed += 1
        yield quoter.close()
        _count(stats, item, digest)
        if progress is not None:
            progress(stats.entries, stats.bytes)


def _count(stats: ExportStats, item: _Item, digest: _Digest) -> bool:
    stats.entries += 1
    stats.bytes += digest.size
    sealed = item.meta.sha256 if item.meta is not None else ""
    ok = bool(sealed) and digest.sha.hexdigest() == sealed
    if not ok:
        stats.mismatched += 1
    return ok


class _Sink(io.RawIOBase):
    """Where :mod:`zipfile` writes: remembers the bytes until :meth:`take`. It can tell its
    position but not seek, so the zip is written as a stream (data descriptors)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._pos = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        b = bytes(data)
        self._parts.append(b)
        self._pos += len(b)
        return len(b)

    def tell(self) -> int:
        return self._pos

    def seekable(self) -> bool:
        return False

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


def _zinfo(name: str, at: float) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, time.gmtime(max(at, 315532800.0))[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    # level 1: most of deflate's gain on mail at several times level 6's speed
    for attr in ("compress_level", "_compresslevel"):  # the public name from Python 3.13
        if hasattr(info, attr):
            setattr(info, attr, ZIP_LEVEL)
            break
    info.external_attr = 0o600 << 16
    return info


def _manifest_csv(rows: list[dict[str, Any]]) -> Iterator[str]:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=MANIFEST_FIELDS)
    w.writeheader()
    for row in rows:
        w.writerow(row)
    yield buf.getvalue()


async def export_zip(
    services: Services,
    tenant_id: str,
    query: Query,
    stats: ExportStats | None = None,
    progress: Progress | None = None,
) -> AsyncIterator[bytes]:
    stats = stats if stats is not None else ExportStats()
    sink = _Sink()
    zf = zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True)
    manifest: list[dict[str, Any]] = []
    n = 0
    async for item in _items(services, tenant_id, query):
        n += 1
        e = item.entry
        name = f"{n:06d}-{e.id}.eml"
        row: dict[str, Any] = {
            "file": name,
            "entry_id": e.id,
            "source": e.source,
            "message_id": e.message_id or "",
            "received_at": e.received_at,
            "size": 0,
            "sha256": "",
            "sealed_sha256": item.meta.sha256 if item.meta is not None else "",
            "verified": False,
            "error": item.error,
        }
        if item.chunks is None:
            stats.failed += 1
            row["file"] = ""
            manifest.append(row)
            continue
        digest = _Digest()
        member = zf.open(_zinfo(name, e.received_at), "w", force_zip64=True)
        try:
            async for chunk in item.chunks:
                await asyncio.to_thread(member.write, digest.add(chunk))
                data = sink.take()
                if data:
                    yield data
        except IntegrityError as exc:
            stats.failed += 1
            row["error"] = str(exc) or "damaged"
        await asyncio.to_thread(member.close)
        row.update(size=digest.size, sha256=digest.sha.hexdigest())
        row["verified"] = _count(stats, item, digest) and not row["error"]
        manifest.append(row)
        yield sink.take()
        if progress is not None:
            progress(stats.entries, stats.bytes)
    body = {
        "tenant_id": tenant_id,
        "exported_at": time.time(),
        "criteria": query.criteria(),
        "entries": len(manifest),
        "files": manifest,
    }
    zf.writestr(_zinfo("manifest.json", time.time()), json.dumps(body, indent=2))
    zf.writestr(_zinfo("manifest.csv", time.time()), "".join(_manifest_csv(manifest)))
    zf.close()
    yield sink.take()


def exporter(
    fmt: str,
) -> Callable[..., AsyncIterator[bytes]]:
    if fmt == "mbox":
        return export_mbox
    if fmt == "zip":
        return export_zip
    raise ValueError(f"unknown export format {fmt!r}: mbox or zip")
