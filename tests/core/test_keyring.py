"""Tenant KEKs in the database: creation, rotation, and binding to the tenant."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.accounts.tenants import create_tenant
from core.aead import tenant_kek_aad
from core.errors import IntegrityError, NotFound
from core.keyring import KeyRing
from core.models import SealedObject, TenantKey
from core.services import Services


async def _tenant(svc: Services, name: str, domain: str) -> str:
    async with svc.db.session() as s:
        creds = await create_tenant(s, svc.keyring, name, [domain])
        await s.commit()
    return creds.tenant_id


async def test_tenant_gets_one_active_kek_wrapped_by_the_root(services: Services) -> None:
    tid = await _tenant(services, "Acme", "acme.example")
    async with services.db.session() as s:
        rows = (await s.execute(select(TenantKey))).scalars().all()
        assert [(r.tenant_id, r.version, r.active) for r in rows] == [(tid, 1, True)]
        assert rows[0].root_key_id == services.root_key.key_id
        kek = services.root_key.unwrap(rows[0].wrapped_key, tenant_kek_aad(tid, 1))
        assert len(kek) == 32
        fresh = KeyRing(services.root_key)  # no cache: reads the row
        assert await fresh.active_kek(s, tid) == (1, kek)


async def test_rotation_keeps_old_versions_decrypting(services: Services) -> None:
    tid = await _tenant(services, "Acme", "acme.example")
    async with services.db.session() as s:
        old = await services.vault.seal(s, tid, b"sealed under v1", "raw")
        await s.commit()
    async with services.db.session() as s:
        assert await services.keyring.create_tenant_key(s, tid) == 2
        await s.commit()
    async with services.db.session() as s:
        new = await services.vault.seal(s, tid, b"sealed under v2", "raw")
        await s.commit()
    assert (old.kek_version, new.kek_version) == (1, 2)

    fresh = KeyRing(services.root_key)  # a second process, nothing cached
    services.vault.keyring = fresh
    async with services.db.session() as s:
        active = (await s.execute(select(TenantKey).where(TenantKey.active))).scalars().all()
        assert [r.version for r in active] == [2]
        assert (await fresh.active_kek(s, tid))[0] == 2
        assert await services.vault.read(s, tid, old.id) == b"sealed under v1"
        assert await services.vault.read(s, tid, new.id) == b"sealed under v2"
        assert await fresh.kek(s, tid, 1) != await fresh.kek(s, tid, 2)


async def test_kek_moved_to_another_tenant_does_not_unwrap(services: Services) -> None:
    a = await _tenant(services, "Acme", "acme.example")
    b = await _tenant(services, "Bravo", "bravo.example")
    async with services.db.session() as s:
        ka = await s.get(TenantKey, (a, 1))
        kb = await s.get(TenantKey, (b, 1))
        assert ka is not None and kb is not None
        ka.wrapped_key, kb.wrapped_key = kb.wrapped_key, ka.wrapped_key
        await s.commit()
    async with services.db.session() as s:
        with pytest.raises(IntegrityError):
            await KeyRing(services.root_key).active_kek(s, a)


async def test_data_key_is_bound_to_its_object(services: Services) -> None:
    tid = await _tenant(services, "Acme", "acme.example")
    async with services.db.session() as s:
        dek, wrapped, version = await services.keyring.new_data_key(s, tid, "o_one")
        assert await services.keyring.data_key(s, tid, "o_one", wrapped, version) == dek
        with pytest.raises(IntegrityError):
            await services.keyring.data_key(s, tid, "o_two", wrapped, version)
        with pytest.raises(NotFound):
            await KeyRing(services.root_key).active_kek(s, "t_nobody")
        assert (await s.execute(select(SealedObject))).first() is None
