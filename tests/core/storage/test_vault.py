"""The vault: seal, read and stream objects per tenant (both databases)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from core import sealed
from core.accounts.tenants import create_tenant
from core.errors import IntegrityError, NotFound
from core.models import SealedObject, now
from core.services import Services
from tests.helpers.stores import listing


async def tenant(svc: Services, name: str) -> str:
    async with svc.db.session() as s:
        creds = await create_tenant(s, svc.keyring, name, [f"{name.lower()}.example"])
        await s.commit()
    return creds.tenant_id


async def seal(svc: Services, tid: str, data: bytes | Iterator[bytes]) -> SealedObject:
    async with svc.db.session() as s:
        row = await svc.vault.seal(s, tid, data, "raw")
        await s.commit()
    return row


def stored_bytes(svc: Services, name: str) -> bytes:
    with svc.store.open(name) as fh:
        return fh.read()


async def test_seal_read_stream(services: Services) -> None:
    tid = await tenant(services, "Acme")
    data = bytes(range(256)) * 1000  # 256 000 bytes: several chunks
    row = await seal(services, tid, iter([data[:1000], data[1000:]]))
    blob = stored_bytes(services, row.storage_name)
    assert data[:64] not in blob
    assert row.size == len(data)
    assert row.sha256 == hashlib.sha256(blob).hexdigest()
    assert len(blob) == sealed.sealed_size(len(data))
    async with services.db.session() as s:
        assert await services.vault.read(s, tid, row.id) == data
        pieces = [p async for p in await services.vault.stream(s, tid, row.id)]
    assert b"".join(pieces) == data
    assert max(len(p) for p in pieces) <= sealed.DEFAULT_CHUNK_SIZE


async def test_object_names_never_come_from_content(services: Services) -> None:
    tid = await tenant(services, "Acme")
    data = b"identical content"
    a, b = await seal(services, tid, data), await seal(services, tid, data)
    assert a.id != b.id and a.storage_name != b.storage_name
    assert stored_bytes(services, a.storage_name) != stored_bytes(services, b.storage_name)
    for digest in (hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest()):
        assert digest[:8] not in a.storage_name


async def test_other_tenants_cannot_read(services: Services) -> None:
    a, b = await tenant(services, "Acme"), await tenant(services, "Bravo")
    row = await seal(services, a, b"acme only")
    async with services.db.session() as s:
        with pytest.raises(NotFound):
            await services.vault.read(s, b, row.id)
        with pytest.raises(NotFound):
            await services.vault.stream(s, b, row.id)
        with pytest.raises(NotFound):
            await services.vault.read(s, a, "o_doesnotexist")
        # even with the row's tenant rewritten, the key is bound to the real owner
        obj = await s.get(SealedObject, row.id)
        assert obj is not None
        obj.tenant_id = b
        await s.commit()
    async with services.db.session() as s:
        with pytest.raises(IntegrityError):
            await services.vault.read(s, b, row.id)


async def test_destroyed_key_means_not_found(services: Services) -> None:
    tid = await tenant(services, "Acme")
    row = await seal(services, tid, b"to be shredded")
    async with services.db.session() as s:
        obj = await s.get(SealedObject, row.id)
        assert obj is not None
        obj.wrapped_key = None
        obj.destroyed_at = now()
        await s.commit()
    assert services.store.exists(row.storage_name)  # the bytes alone are useless now
    async with services.db.session() as s:
        with pytest.raises(NotFound, match="destroyed"):
            await services.vault.read(s, tid, row.id)
        with pytest.raises(NotFound):
            await services.vault.stream(s, tid, row.id)


async def test_tampered_ciphertext_is_refused(services: Services) -> None:
    tid = await tenant(services, "Acme")
    row = await seal(services, tid, b"z" * 200_000)
    blob = bytearray(stored_bytes(services, row.storage_name))
    blob[100_000] ^= 1
    services.store.put(row.storage_name, [bytes(blob)])
    async with services.db.session() as s:
        with pytest.raises(IntegrityError):
            await services.vault.read(s, tid, row.id)
        stream = await services.vault.stream(s, tid, row.id)
        with pytest.raises(IntegrityError):
            async for _ in stream:
                pass


async def test_failed_seal_stores_nothing(services: Services) -> None:
    tid = await tenant(services, "Acme")

    def dying() -> Iterator[bytes]:
        yield b"a" * 300_000
        raise RuntimeError("client went away")

    async with services.db.session() as s:
        with pytest.raises(RuntimeError):
            await services.vault.seal(s, tid, dying(), "raw")
        await s.commit()
    async with services.db.session() as s:
        assert (await s.execute(select(SealedObject))).first() is None
    assert listing(services.store) == []  # no object, no temp file, no upload left
