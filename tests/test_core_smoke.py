from sqlalchemy import select

from core.accounts.authentication import authenticate_smtp
from core.accounts.tenants import create_tenant
from core.models import SealedObject


async def test_tenant_and_sealed_roundtrip(services):
    async with services.db.session() as s:
        creds = await create_tenant(s, services.keyring, "Acme", ["acme.example"])
        await s.commit()
    async with services.db.session() as s:
        obj = await services.vault.seal(s, creds.tenant_id, b"hello" * 50000, "raw")
        await s.commit()
    async with services.db.session() as s:
        assert await services.vault.read(s, creds.tenant_id, obj.id) == b"hello" * 50000
        row = (await s.execute(select(SealedObject))).scalar_one()
        assert row.size == 250000
        t = await authenticate_smtp(s, creds.smtp_username, creds.smtp_password)
        assert t is not None and t.id == creds.tenant_id
        assert await authenticate_smtp(s, creds.smtp_username, "wrong") is None
