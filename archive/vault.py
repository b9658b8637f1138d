"""Seal and open objects: a fresh data key per object, wrapped by the tenant's KEK, the
ciphertext in the store, the wrapped key in ``sealed_objects``.

``seal`` writes the ciphertext durably before it returns and adds the row to the caller's
session; the caller commits, so the row exists only once the bytes are safe.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterable, Iterator

from sqlalchemy.ext.asyncio import AsyncSession

from archive.store import ObjectStore
from core import sealed
from core.errors import IntegrityError, NotFound
from core.ids import new_id
from core.keyring import KeyRing
from core.models import SealedObject


class _Counting:
    """Wraps the sealed stream to count plaintext and hash the ciphertext on the way."""

    def __init__(self) -> None:
        self.plain = 0
        self.digest = hashlib.sha256()

    def plaintext(self, data: Iterable[bytes]) -> Iterator[bytes]:
        for piece in data:
            self.plain += len(piece)
            yield piece

    def ciphertext(self, data: Iterable[bytes]) -> Iterator[bytes]:
        for piece in data:
            self.digest.update(piece)
            yield piece


class Vault:
    def __init__(self, store: ObjectStore, keyring: KeyRing) -> None:
        self.store = store
        self.keyring = keyring

    def __repr__(self) -> str:
        return f"Vault({self.store!r})"

    async def seal(
        self,
        session: AsyncSession,
        tenant_id: str,
        data: bytes | Iterable[bytes],
        kind: str,
    ) -> SealedObject:
        """Encrypt ``data`` under a new data key, store it durably, add its row."""
        object_id = new_id("o_", 15)
        dek, wrapped, version = await self.keyring.new_data_key(session, tenant_id, object_id)
        chunks = [data] if isinstance(data, bytes | bytearray | memoryview) else data
        counter = _Counting()
        stream = counter.ciphertext(
            sealed.seal_stream(dek, tenant_id, object_id, counter.plaintext(chunks))
        )
        await asyncio.to_thread(self.store.put, object_id, stream)
        row = SealedObject(
            id=object_id,
            tenant_id=tenant_id,
            kind=kind,
            storage_name=object_id,
            wrapped_key=wrapped,
            kek_version=version,
            size=counter.plain,
            sha256=counter.digest.hexdigest(),
        )
        session.add(row)
        return row

    async def _key(
        self, session: AsyncSession, tenant_id: str, object_id: str
    ) -> tuple[SealedObject, bytes]:
        row = await session.get(SealedObject, object_id)
        if row is None or row.tenant_id != tenant_id:
            raise NotFound(f"object {object_id} not found")
        if row.wrapped_key is None or row.destroyed_at is not None:
            raise NotFound(f"object {object_id} was destroyed")
        key = await self.keyring.data_key(
            session, tenant_id, object_id, row.wrapped_key, row.kek_version
        )
        return row, key

    async def read(self, session: AsyncSession, tenant_id: str, object_id: str) -> bytes:
        """The whole plaintext (for small objects: metadata, notifications)."""
        row, key = await self._key(session, tenant_id, object_id)

        def work() -> bytes:
            with self.store.open(row.storage_name) as fh:
                return b"".join(sealed.open_stream(key, tenant_id, object_id, fh))

        return await asyncio.to_thread(work)

    async def stream(
        self, session: AsyncSession, tenant_id: str, object_id: str
    ) -> AsyncIterator[bytes]:
        """The plaintext chunk by chunk, memory bounded by the chunk size. The key is looked
        up before the first chunk, so a missing object fails before anything is sent."""
        row, key = await self._key(session, tenant_id, object_id)
        fh = await asyncio.to_thread(self.store.open, row.storage_name)
        return _aiter_chunks(fh, sealed.open_stream(key, tenant_id, object_id, fh))


async def _aiter_chunks(fh, gen: Iterator[bytes]) -> AsyncIterator[bytes]:  # noqa: ANN001
    sentinel = object()
    try:
        while True:
            piece = await asyncio.to_thread(next, gen, sentinel)
            if piece is sentinel:
                return
            yield piece  # type: ignore[misc]
    except IntegrityError:
        raise
    finally:
        fh.close()
