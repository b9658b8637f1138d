"""Tenant key-encryption keys in the database, unwrapped by the root key and cached."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core import keys
from core.errors import NotFound
from core.models import TenantKey


class KeyRing:
    """Hands out tenant KEKs and wraps/unwraps per-object data keys."""

    def __init__(self, root: keys.RootKey) -> None:
        self.root = root
        self._cache: dict[tuple[str, int], bytes] = {}
        self._active: dict[str, int] = {}

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
        kek = keys.new_key()
        session.add(
            TenantKey(
                tenant_id=tenant_id,
                version=version,
                wrapped_key=self.root.wrap(kek, keys.tenant_kek_aad(tenant_id, version)),
                root_key_id=self.root.key_id,
                active=True,
            )
        )
        self._cache[(tenant_id, version)] = kek
        self._active[tenant_id] = version
        return version

    async def _load(
        self, session: AsyncSession, tenant_id: str, version: int | None
    ) -> tuple[int, bytes]:
        stmt = select(TenantKey).where(TenantKey.tenant_id == tenant_id)
        stmt = stmt.where(TenantKey.version == version) if version else stmt.where(TenantKey.active)
        row = (await session.execute(stmt)).scalars().first()
        if row is None:
            raise NotFound(f"no key for tenant {tenant_id}")
        kek = self.root.unwrap(row.wrapped_key, keys.tenant_kek_aad(tenant_id, row.version))
        self._cache[(tenant_id, row.version)] = kek
        if row.active:
            self._active[tenant_id] = row.version
        return row.version, kek

    async def active_kek(self, session: AsyncSession, tenant_id: str) -> tuple[int, bytes]:
        version = self._active.get(tenant_id)
        if version is not None and (tenant_id, version) in self._cache:
            return version, self._cache[(tenant_id, version)]
        return await self._load(session, tenant_id, None)

    async def kek(self, session: AsyncSession, tenant_id: str, version: int) -> bytes:
        cached = self._cache.get((tenant_id, version))
        if cached is not None:
            return cached
        return (await self._load(session, tenant_id, version))[1]

    async def new_data_key(
        self, session: AsyncSession, tenant_id: str, object_id: str
    ) -> tuple[bytes, bytes, int]:
        """A fresh data key, its wrapped form, and the KEK version that wrapped it."""
        version, kek = await self.active_kek(session, tenant_id)
        dek = keys.new_key()
        return dek, keys.wrap(kek, dek, keys.data_key_aad(tenant_id, object_id)), version

    async def data_key(
        self, session: AsyncSession, tenant_id: str, object_id: str, wrapped: bytes, version: int
    ) -> bytes:
        kek = await self.kek(session, tenant_id, version)
        return keys.unwrap(kek, wrapped, keys.data_key_aad(tenant_id, object_id))
