"""The evidence log on both databases: entries written in their own transactions are chained
in order by one writer at a time (even when several chain at once), checkpoints are signed
every 100 entries and verify after the signing key is rotated, and the walk names the first
entry that does not hold."""

from __future__ import annotations

import asyncio

from sqlalchemy import select, update

from core.accounts.tenants import create_tenant
from core.evidence import keys, log
from core.evidence.models import EvidenceCheckpoint, EvidenceEntry
from core.services import Services


async def _tenant(services: Services) -> str:
    async with services.db.session() as s:
        creds = await create_tenant(s, services.keyring, "Acme", ["acme.example"])
        await s.commit()
    return creds.tenant_id


async def _write(services: Services, tenant_id: str, n: int, tag: str) -> None:
    for i in range(n):
        async with services.db.write_gate.hold(), services.db.session() as s:
            log.append(s, tenant_id, "opened", f"m_{tag}", f"r{i}@x.example", n=i)
            await s.commit()


async def test_entries_chain_in_order_with_signed_checkpoints(services: Services) -> None:
    tenant = await _tenant(services)
    await _write(services, tenant, 150, "a")
    # several chain at once (workers, a receipt, the CLI): one writer at a time
    linked = await asyncio.gather(*(log.chain(services, tenant) for _ in range(3)))
    assert sum(linked) == 150
    async with services.db.session() as s:
        rows = (await s.execute(select(EvidenceEntry).order_by(EvidenceEntry.seq))).scalars().all()
        cps = (await s.execute(select(EvidenceCheckpoint))).scalars().all()
    assert [r.seq for r in rows] == list(range(1, 151))
    assert [r.recipient for r in rows] == [f"r{i}@x.example" for i in range(150)]
    assert all(b.prev_hash == a.hash for a, b in zip(rows, rows[1:], strict=False))
    assert [c.seq for c in cps] == [150]  # at the head, once 100 or more were chained
    walk = await log.verify(services, tenant)
    assert (walk.entries, walk.checkpoints, walk.problem) == (150, 1, None)

    # a new key: the old checkpoint still verifies, a new one is signed with the new key
    async with services.db.session() as s:
        await keys.rotate(s, services.vault, tenant)
        await s.commit()
    await _write(services, tenant, 3, "b")
    assert await log.chain(services, tenant, checkpoint=True) == 3
    walk = await log.verify(services, tenant)
    assert (walk.entries, walk.checkpoints, walk.problem) == (153, 2, None)
    async with services.db.session() as s:
        assert len(await keys.published(s, tenant)) == 2


async def test_the_walk_names_the_first_broken_entry(services: Services) -> None:
    tenant = await _tenant(services)
    await _write(services, tenant, 5, "c")
    await log.chain(services, tenant, checkpoint=True)
    async with services.db.session() as s:
        await s.execute(
            update(EvidenceEntry).where(EvidenceEntry.seq == 2).values(recipient="eve@x.example")
        )
        await s.commit()
    walk = await log.verify(services, tenant)
    assert walk.problem == "entry 2 (opened of m_c) was changed after it was written"
    assert walk.entries == 1


async def test_a_forged_checkpoint_is_named(services: Services) -> None:
    tenant = await _tenant(services)
    await _write(services, tenant, 2, "d")
    await log.chain(services, tenant, checkpoint=True)
    async with services.db.session() as s:
        await s.execute(update(EvidenceCheckpoint).values(signature="AAAA"))
        await s.commit()
    walk = await log.verify(services, tenant)
    assert walk.problem is not None and "checkpoint at entry 2" in walk.problem


def test_signatures_cover_every_byte() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private = Ed25519PrivateKey.generate()
    public = keys.base64.b64encode(keys._raw(private.public_key())).decode()
    payload = {"a": 1, "b": ["x", "é"]}
    sig = keys.sign(private, payload)
    assert keys.verify(public, payload, sig)
    assert not keys.verify(public, {"a": 1, "b": ["x", "e"]}, sig)
    assert not keys.verify(public, payload, sig[:-4] + "AAAA")
    assert not keys.verify("not base64!", payload, sig)
