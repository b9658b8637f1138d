"""``archive.verify``: a flipped byte, a truncated object and a missing object are each
found and named; a clean archive verifies (both databases, both stores)."""

from __future__ import annotations

import time

from sqlalchemy import select

from archive.verify import verify
from core.models import AuditEvent
from core.services import Services
from tests.archive.test_retention import archived, make_tenant, stored


async def test_clean_archive_verifies(services: Services) -> None:
    tid = await make_tenant(services, "Acme")
    await archived(services, tid, "one", retain_until=time.time() + 86400)
    report = await verify(services)
    # each entry: the original and its sealed meta
    assert report.checked == 2 and report.ok == 2 and report.damaged == []
    assert report.bytes > 0


async def test_damage_is_found_and_named(services: Services) -> None:
    tid = await make_tenant(services, "Acme")
    other = await make_tenant(services, "Other")
    later = time.time() + 86400
    flipped = await archived(services, tid, "flipped", retain_until=later)
    truncated = await archived(services, tid, "truncated", retain_until=later)
    missing = await archived(services, tid, "missing", retain_until=later)
    fine = await archived(services, other, "fine", retain_until=later)

    blob = bytearray(stored(services, flipped.object_id))
    blob[len(blob) // 2] ^= 0x01
    services.store.put(flipped.object_id, [bytes(blob)])
    blob = stored(services, truncated.object_id)
    services.store.put(truncated.object_id, [blob[:-20]])
    services.store.delete(missing.object_id)

    seen: list[tuple[int, int]] = []
    report = await verify(services, progress=lambda done, total: seen.append((done, total)))

    problems = {d.object_id: d for d in report.damaged}
    assert set(problems) == {flipped.object_id, truncated.object_id, missing.object_id}
    assert problems[flipped.object_id].problem.startswith("damaged")
    assert "authentication" in problems[flipped.object_id].problem
    assert problems[truncated.object_id].problem.startswith("damaged")
    assert problems[missing.object_id].problem == "missing"
    assert all(d.tenant_id == tid and d.kind == "raw" for d in report.damaged)
    assert report.checked == 8 and report.ok == 5
    assert seen[0] == (0, 8) and seen[-1] == (8, 8)

    only_other = await verify(services, other)
    assert only_other.checked == 2 and only_other.damaged == []
    assert fine.object_id not in problems
    async with services.db.session() as s:
        rows = (
            (await s.execute(select(AuditEvent).where(AuditEvent.action == "archive.verify")))
            .scalars()
            .all()
        )
    assert len(rows) == 2


async def test_plaintext_digest_of_the_meta_is_compared(services: Services) -> None:
    """An object re-sealed under its own key (so GCM and the row's ciphertext digest agree)
    but with other content is caught by the plaintext SHA-256 in the archive meta."""
    from core import sealed
    from core.models import SealedObject

    tid = await make_tenant(services, "Acme")
    entry = await archived(services, tid, "original", retain_until=time.time() + 86400)
    async with services.db.session() as s:
        row = await s.get(SealedObject, entry.object_id)
        assert row is not None and row.wrapped_key is not None
        key = await services.keyring.data_key(s, tid, row.id, row.wrapped_key, row.kek_version)
        forged = b"Subject: forged\r\n\r\nbody\r\n"
        blob = sealed.seal_bytes(key, tid, row.id, forged)
        services.store.put(row.storage_name, [blob])
        import hashlib

        row.sha256 = hashlib.sha256(blob).hexdigest()
        row.size = len(forged)
        await s.commit()
    report = await verify(services)
    assert [d.object_id for d in report.damaged] == [entry.object_id]
    assert "plaintext SHA-256" in report.damaged[0].problem
