"""Integrity check of the archive: every live sealed object is read back, every chunk's
GCM tag checked, and its digests compared with what was recorded.

For each object whose key still exists (``destroyed_at`` is None): the stored ciphertext is
streamed once through SHA-256 (compared with ``sealed_objects.sha256``) and through
:func:`core.sealed.open_stream` (authenticates every chunk, detects truncation and
reordering); the plaintext is counted (``size``) and, for an archived original, hashed and
compared with the SHA-256 recorded in its sealed meta (:class:`archive.index.Summary`).
Memory stays at one chunk per object whatever its size; rows are read in pages.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections.abc import Callable
from typing import Any, BinaryIO

from sqlalchemy import func, select

from archive.index import Summary
from archive.models import ArchiveEntry
from core import sealed
from core.audit import audit
from core.errors import IntegrityError, NotFound, SealmailError
from core.models import SealedObject
from core.services import Services

PAGE = 200
READ_SIZE = 1024 * 1024


@dataclasses.dataclass
class Damage:
    object_id: str
    tenant_id: str
    kind: str
    problem: str  # missing | damaged | digest mismatch | size mismatch | key

    def as_json(self) -> dict[str, str]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class VerifyReport:
    checked: int = 0
    ok: int = 0
    bytes: int = 0  # plaintext bytes verified
    damaged: list[Damage] = dataclasses.field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "ok": self.ok,
            "bytes": self.bytes,
            "damaged": [d.as_json() for d in self.damaged],
        }


class _Hashing:
    """A read-only file wrapper that hashes what is read through it."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self.digest = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self._fh.read(n)
        self.digest.update(data)
        return data

    def drain(self) -> None:
        while piece := self.read(READ_SIZE):
            del piece


def _check_stream(store: Any, row: SealedObject, key: bytes, plain_sha: str | None) -> str | None:
    """Blocking: stream one object and return what is wrong with it, or None."""
    try:
        fh = store.open(row.storage_name)
    except NotFound:
        return "missing"
    try:
        wrapped = _Hashing(fh)
        plain = hashlib.sha256()
        size = 0
        try:
            for piece in sealed.open_stream(key, row.tenant_id, row.id, wrapped):  # type: ignore[arg-type]
                plain.update(piece)
                size += len(piece)
        except IntegrityError as exc:
            return f"damaged: {str(exc).split(': ', 1)[-1]}"
        wrapped.drain()  # bytes after the last chunk count in the ciphertext digest
    finally:
        fh.close()
    if row.sha256 and wrapped.digest.hexdigest() != row.sha256:
        return "digest mismatch: ciphertext SHA-256 differs from the recorded one"
    if size != row.size:
        return f"size mismatch: {size} bytes, {row.size} recorded"
    if plain_sha and plain.hexdigest() != plain_sha:
        return "digest mismatch: plaintext SHA-256 differs from the archive meta"
    return None


async def _plain_digests(
    services: Services, session: Any, rows: list[SealedObject]
) -> dict[str, str]:
    """object id → plaintext SHA-256 recorded in the sealed meta of its archive entry."""
    ids = [r.id for r in rows]
    entries = await session.execute(
        select(ArchiveEntry.object_id, ArchiveEntry.meta_object_id, ArchiveEntry.tenant_id).where(
            ArchiveEntry.object_id.in_(ids), ArchiveEntry.meta_object_id.is_not(None)
        )
    )
    out: dict[str, str] = {}
    for object_id, meta_id, tenant_id in entries:
        try:
            summary = Summary.from_json(await services.vault.read(session, tenant_id, meta_id))
        except (SealmailError, ValueError, KeyError, TypeError):
            continue  # the meta itself is checked (and reported) as an object of its own
        if summary.sha256:
            out[object_id] = summary.sha256
    return out


async def verify(
    services: Services,
    tenant_id: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> VerifyReport:
    """Check every live sealed object (of ``tenant_id``, or all); see the module docstring."""
    report = VerifyReport()
    live = [SealedObject.destroyed_at.is_(None), SealedObject.wrapped_key.is_not(None)]
    if tenant_id:
        live.append(SealedObject.tenant_id == tenant_id)
    async with services.db.session() as s:
        total = (await s.execute(select(func.count()).where(*live))).scalar_one()
    if progress:
        progress(0, total)
    after = ""
    while True:
        async with services.db.session() as s:
            rows = list(
                (
                    await s.execute(
                        select(SealedObject)
                        .where(*live, SealedObject.id > after)
                        .order_by(SealedObject.id)
                        .limit(PAGE)
                    )
                ).scalars()
            )
            if not rows:
                break
            after = rows[-1].id
            digests = await _plain_digests(services, s, rows)
            for row in rows:
                problem: str | None
                try:
                    key = await services.keyring.data_key(
                        s, row.tenant_id, row.id, row.wrapped_key or b"", row.kek_version
                    )
                except (SealmailError, ValueError) as exc:
                    problem = f"key: {type(exc).__name__}"
                else:
                    try:
                        problem = await asyncio.to_thread(
                            _check_stream, services.store, row, key, digests.get(row.id)
                        )
                    except SealmailError as exc:
                        problem = f"unreadable: {exc}"
                report.checked += 1
                if problem is None:
                    report.ok += 1
                    report.bytes += row.size
                else:
                    report.damaged.append(Damage(row.id, row.tenant_id, row.kind, problem))
                if progress:
                    progress(report.checked, total)
    async with services.db.session() as s:
        await audit(
            s, tenant_id, "verify", "archive.verify", tenant_id or "",
            checked=report.checked, damaged=len(report.damaged),
        )  # fmt: skip
        await s.commit()
    return report
