"""Seal and open objects: a fresh data key per object, wrapped by the tenant's KEK, the
ciphertext in the store, the wrapped key in ``sealed_objects``.

``seal`` writes the ciphertext durably before it returns and adds the row to the caller's
session; the caller commits, so the row exists only once the bytes are safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import cast

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from core import sealed
from core.errors import IntegrityError, NotFound
from core.ids import new_id
from core.keyring import KeyRing
from core.models import SealedObject
from core.storage.interface import ObjectStore
from core.storage.plain_cache import PlainCache

# the rows read_many checks, built once (building a statement costs more than running it)
_ROWS_OF = select(
    SealedObject.id,
    SealedObject.tenant_id,
    SealedObject.wrapped_key.is_(None).label("shredded"),
    SealedObject.destroyed_at,
).where(SealedObject.id.in_(bindparam("ids", expanding=True)))


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


_DONE = object()
_ABORT = object()


class _Aborted(Exception):
    """The writer was told to give up: the store removes its temp file."""


class SealWriter:
    """Seal a message that arrives piece by piece (SMTP DATA) without holding it whole.

    ``write`` hands plaintext to a thread of its own that encrypts it and writes the store's
    temp file as it comes; ``close`` ends the stream and waits until the object is durable
    (fsync, rename, directory fsync), then returns its row, which the caller adds to the
    session that commits it. ``abort`` (or ``abort_nowait`` where nothing may be awaited)
    makes the thread drop the temp file. At most ``max_pending`` pieces wait for the
    thread, so memory stays bounded whatever the size of the message. A thread per writer,
    not a pool: a slow sender must never hold up the others.
    """

    def __init__(
        self,
        store: ObjectStore,
        tenant_id: str,
        object_id: str,
        kind: str,
        dek: bytes,
        wrapped: bytes,
        version: int,
        max_pending: int = 8,
        retain_until: float | None = None,
    ) -> None:
        self._store = store
        self._retain_until = retain_until
        self.tenant_id, self.object_id, self.kind = tenant_id, object_id, kind
        self._dek, self._wrapped, self._version = dek, wrapped, version
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._max_pending = max_pending
        self._credits = asyncio.Semaphore(max_pending)
        self._loop = asyncio.get_running_loop()
        self._done: asyncio.Future[None] = self._loop.create_future()
        self._thread: threading.Thread | None = None
        self._counter = _Counting()
        self._ended = False

    def _pieces(self) -> Iterator[bytes]:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if item is _ABORT:
                raise _Aborted
            self._loop.call_soon_threadsafe(self._credits.release)
            yield item  # type: ignore[misc]

    def _run(self) -> None:
        c = self._counter
        stream = c.ciphertext(
            sealed.seal_stream(
                self._dek, self.tenant_id, self.object_id, c.plaintext(self._pieces())
            )
        )
        error: BaseException | None = None
        try:
            self._store.put(self.object_id, stream, retain_until=self._retain_until)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
            error = exc
        self._loop.call_soon_threadsafe(self._finished, error)

    def _finished(self, error: BaseException | None) -> None:
        if error is None:
            self._done.set_result(None)
            return
        self._done.set_exception(error)
        self._done.exception()  # retrieved: an abandoned writer must not log a warning
        for _ in range(self._max_pending):  # a writer waiting for room wakes and sees it
            self._credits.release()

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"seal-{self.object_id}", daemon=True
            )
            self._thread.start()

    async def write(self, data: bytes) -> None:
        """Queue ``data``; waits only while ``max_pending`` pieces are still unwritten.
        Raises the store's error if the thread has already failed."""
        if self._ended:
            raise RuntimeError("writer already closed")
        if self._done.done():
            self._done.result()  # raises the thread's error
        if not data:
            return
        self._start()
        await self._credits.acquire()
        if self._done.done():
            self._done.result()
        self._queue.put(bytes(data))

    async def close(self) -> SealedObject:
        """Finish the object durably; its row (not yet in any session)."""
        self._ended = True
        self._start()
        self._queue.put(_DONE)
        await asyncio.shield(self._done)
        return SealedObject(
            id=self.object_id,
            tenant_id=self.tenant_id,
            kind=self.kind,
            storage_name=self.object_id,
            wrapped_key=self._wrapped,
            kek_version=self._version,
            size=self._counter.plain,
            sha256=self._counter.digest.hexdigest(),
        )

    def abort_nowait(self) -> None:
        """Tell the thread to drop its temp file; does not wait for it."""
        if not self._ended:
            self._ended = True
            if self._thread is not None:
                self._queue.put(_ABORT)

    async def abort(self) -> None:
        """Drop the temp file and wait until it is gone."""
        started = self._thread is not None
        self.abort_nowait()
        if started:
            with contextlib.suppress(_Aborted, Exception):
                await asyncio.shield(self._done)


ARCHIVE_KINDS = frozenset({"raw", "journal"})
"""Kinds that are the long-term archive copy: retained ``archive_retention`` by default
(S3 Object Lock); portal copies, parts and metadata have shorter lives of their own."""


class Vault:
    def __init__(
        self, store: ObjectStore, keyring: KeyRing, archive_retention: float | None = None
    ) -> None:
        self.store = store
        self.keyring = keyring
        self.archive_retention = archive_retention

    def retain_until(self, kind: str, retain_until: float | None = None) -> float | None:
        """The retention date a new object of ``kind`` gets: the caller's, else now +
        ``archive_retention`` for the archive kinds, else none."""
        if retain_until is not None:
            return retain_until
        if kind in ARCHIVE_KINDS and self.archive_retention:
            return time.time() + self.archive_retention
        return None

    def __repr__(self) -> str:
        return f"Vault({self.store!r})"

    async def seal(
        self,
        session: AsyncSession,
        tenant_id: str,
        data: bytes | Iterable[bytes],
        kind: str,
        retain_until: float | None = None,
    ) -> SealedObject:
        """Encrypt ``data`` under a new data key, store it durably, add its row.
        ``retain_until`` (unix seconds) overrides the default of :meth:`retain_until`."""
        object_id = new_id("o_", 15)
        dek, wrapped, version = await self.keyring.new_data_key(session, tenant_id, object_id)
        whole = isinstance(data, bytes | bytearray | memoryview)
        chunks = cast("Iterable[bytes]", [data] if whole else data)
        counter = _Counting()
        stream = counter.ciphertext(
            sealed.seal_stream(dek, tenant_id, object_id, counter.plaintext(chunks))
        )
        until = self.retain_until(kind, retain_until)
        await asyncio.to_thread(self.store.put, object_id, stream, until)
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

    async def writer(
        self,
        session: AsyncSession,
        tenant_id: str,
        kind: str,
        retain_until: float | None = None,
    ) -> SealWriter:
        """A :class:`SealWriter` for a new object of ``tenant_id`` (the key is made now)."""
        object_id = new_id("o_", 15)
        dek, wrapped, version = await self.keyring.new_data_key(session, tenant_id, object_id)
        until = self.retain_until(kind, retain_until)
        return SealWriter(
            self.store, tenant_id, object_id, kind, dek, wrapped, version, retain_until=until
        )

    async def _key(
        self, session: AsyncSession, tenant_id: str, object_id: str
    ) -> tuple[SealedObject, bytes]:
        row = await session.get(SealedObject, object_id)
        if row is None:  # sealed in this session's transaction, not flushed yet
            row = next(
                (o for o in session.new if isinstance(o, SealedObject) and o.id == object_id),
                None,
            )
        if row is None or row.tenant_id != tenant_id:
            raise NotFound(f"object {object_id} not found")
        if row.wrapped_key is None or row.destroyed_at is not None:
            raise NotFound(f"object {object_id} was destroyed")
        key = await self.keyring.data_key(
            session, tenant_id, object_id, row.wrapped_key, row.kek_version
        )
        return row, key

    async def read(
        self,
        session: AsyncSession,
        tenant_id: str,
        object_id: str,
        *,
        kept_in: PlainCache | None = None,
    ) -> bytes:
        """The whole plaintext (for small objects: metadata, notifications). ``kept_in`` is
        for :meth:`read_many` only, which has just checked the object's row in this request:
        the plaintext is taken from that cache when it holds it, and kept there otherwise."""
        if kept_in is not None:
            kept = kept_in.get(tenant_id, object_id)
            if kept is not None:
                return kept
        row, key = await self._key(session, tenant_id, object_id)

        def work() -> bytes:
            with self.store.open(row.storage_name) as fh:
                return b"".join(sealed.open_stream(key, tenant_id, object_id, fh))

        data = await asyncio.to_thread(work)
        if kept_in is not None:
            kept_in.put(tenant_id, object_id, data)
        return data

    async def read_many(
        self,
        session: AsyncSession,
        tenant_id: str,
        object_ids: Iterable[str],
        cache: PlainCache | None = None,
    ) -> dict[str, bytes]:
        """The whole plaintext of several small objects of ``tenant_id``: their rows checked
        in one query (tenant, key not destroyed) on every call, kept plaintext included, then
        each one through :meth:`read`, which opens only those ``cache`` does not hold;
        NotFound as :meth:`read` for the first one that fails."""
        ids = list(dict.fromkeys(object_ids))
        if not ids:
            return {}
        rows = {r.id: r for r in (await session.execute(_ROWS_OF, {"ids": ids})).all()}
        out: dict[str, bytes] = {}
        for object_id in ids:
            row = rows.get(object_id)
            if row is None or row.tenant_id != tenant_id:
                raise NotFound(f"object {object_id} not found")
            if row.shredded or row.destroyed_at is not None:
                if cache is not None:
                    cache.drop(tenant_id, object_id)
                raise NotFound(f"object {object_id} was destroyed")
            # the row is checked: read may hand out the kept plaintext (or open and keep it)
            out[object_id] = await self.read(session, tenant_id, object_id, kept_in=cache)
        return out

    async def chunks(
        self, session: AsyncSession, tenant_id: str, object_id: str
    ) -> Callable[[], Iterator[bytes]]:
        """A function that reads the plaintext afresh, chunk by chunk, each time it is
        called (blocking: call it in a thread). The key is looked up now; memory stays at
        one chunk. For a large message read more than once (skeleton, then parts)."""
        row, key = await self._key(session, tenant_id, object_id)

        def read() -> Iterator[bytes]:
            with self.store.open(row.storage_name) as fh:
                yield from sealed.open_stream(key, tenant_id, object_id, fh)

        return read

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
