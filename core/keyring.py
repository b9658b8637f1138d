"""Tenant key-encryption keys in the database, unwrapped by the root key and cached.

Unwrapped KEKs are cached for the life of the process, so a KMS root is called once per
tenant and version, not per message. Which version is *active* (wraps new data keys) is
looked up again after ``ACTIVE_TTL`` seconds, so a process that keeps running while
``sealmail key rotate`` makes a new version active moves to it within that time.
"""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.aead import data_key_aad, new_key, tenant_kek_aad, unwrap, wrap
from core.errors import NotFound
from core.models import TenantKey
from core.rootkey.protocol import RootKey

ACTIVE_TTL = 30.0


class KeyRing:
    """Hands out tenant KEKs and wraps/unwraps per-object data keys."""

    def __init__(self, root: RootKey, active_ttl: float = ACTIVE_TTL) -> None:
        self.root = root
        self.active_ttl = active_ttl
        self._cache: dict[tuple[str, int], bytes] = {}
        self._active: dict[str, tuple[int, float]] = {}  # tenant → (version, looked up at)

    def __repr__(self) -> str:
        return f"KeyRing({self.root!r})"

    @property
    def stamp_key(self) -> bytes:
        return self.root.derive("loop-stamp")

    async def create_tenant_key(self, session: AsyncSession, tenant_id: str) -> int:
        """Add a new active KEK version for the tenant (the first one on creation)."""
        rows = (
            (await session.execute(select(TenantKey).where(TenantKey.tenant_id == tenant_id)))
            .scalars()
            .all()
        )
        version = max((r.version for r in rows), default=0) + 1
        for r in rows:
            r.active = False
        kek = new_key()
        aad = tenant_kek_aad(tenant_id, version)
        wrapped = await asyncio.to_thread(self.root.wrap, kek, aad)
        root_key_id = await asyncio.to_thread(lambda: self.root.key_id)
        session.add(
            TenantKey(
                tenant_id=tenant_id,
                version=version,
                wrapped_key=wrapped,
                root_key_id=root_key_id,
                active=True,
            )
        )
        self._cache[(tenant_id, version)] = kek
        self._active[tenant_id] = (version, time.monotonic())
        return version

    async def _load(
        self, session: AsyncSession, tenant_id: str, version: int | None
    ) -> tuple[int, bytes]:
        stmt = select(TenantKey).where(TenantKey.tenant_id == tenant_id)
        stmt = stmt.where(TenantKey.version == version) if version else stmt.where(TenantKey.active)
        row = (await session.execute(stmt)).scalars().first()
        if row is None:
            raise NotFound(f"no key for tenant {tenant_id}")
        kek = self._cache.get((tenant_id, row.version))
        if kek is None:
            aad = tenant_kek_aad(tenant_id, row.version)
            kek = await asyncio.to_thread(self.root.unwrap, row.wrapped_key, aad)
            self._cache[(tenant_id, row.version)] = kek
        if row.active:
            self._active[tenant_id] = (row.version, time.monotonic())
        return row.version, kek

    async def active_kek(self, session: AsyncSession, tenant_id: str) -> tuple[int, bytes]:
        active = self._active.get(tenant_id)
        if active is not None and time.monotonic() - active[1] < self.active_ttl:
            cached = self._cache.get((tenant_id, active[0]))
            if cached is not None:
                return active[0], cached
        return await self._load(session, tenant_id, None)

    async def kek(self, session: AsyncSession, tenant_id: str, version: int) -> bytes:
        cached = self._cache.get((tenant_id, version))
        if cached is not None:
            return cached
        return (await self._load(session, tenant_id, version))[1]

    def forget_active(self, tenant_id: str | None = None) -> None:
        """Look the active version up again on next use (after a rotation)."""
        if tenant_id is None:
            self._active.clear()
        else:
            self._active.pop(tenant_id, None)

    async def new_data_key(
        self, session: AsyncSession, tenant_id: str, object_id: str
    ) -> tuple[bytes, bytes, int]:
        """A fresh data key, its wrapped form, and the KEK version that wrapped it."""
        version, kek = await self.active_kek(session, tenant_id)
        dek = new_key()
        return dek, wrap(kek, dek, data_key_aad(tenant_id, object_id)), version

    async def data_key(
        self, session: AsyncSession, tenant_id: str, object_id: str, wrapped: bytes, version: int
    ) -> bytes:
        kek = await self.kek(session, tenant_id, version)
        return unwrap(kek, wrapped, data_key_aad(tenant_id, object_id))
