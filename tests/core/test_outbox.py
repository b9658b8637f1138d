"""The outbox: enqueue, leases, and who may finish a recipient (both databases)."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import select

from core import outbox
from core.models import OutboxRecipient
from core.services import Services


async def put(svc: Services, rcpts: list[str], kind: str = "clear", lifetime: float = 3600) -> str:
    async with svc.db.session() as s:
        item = await outbox.enqueue(
            s,
            kind=kind,
            tenant_id="t_x",
            mail_from="alice@acme.example",
            recipients=rcpts,
            object_id="o_payload",
            lifetime=lifetime,
            message_id="m_1",
        )
        await s.commit()
    return item.id


async def claim(
    svc: Services, owner: str, limit: int = 100, lease: float = 60
) -> list[outbox.Claimed]:
    async with svc.db.session() as s:
        return await outbox.claim_due(s, owner, limit, lease, not svc.db.is_sqlite)


async def state(svc: Services) -> dict[str, tuple[str, int, str | None]]:
    async with svc.db.session() as s:
        rows = (await s.execute(select(OutboxRecipient))).scalars().all()
        return {r.rcpt: (r.state, r.attempts, r.lease_owner) for r in rows}


async def test_enqueue_then_claim(services: Services) -> None:
    before = time.time()
    oid = await put(services, ["b@x.example", "c@y.example"], kind="notification", lifetime=100)
    got = await claim(services, "w1")
    assert sorted(c.rcpt for c in got) == ["b@x.example", "c@y.example"]
    c = got[0]
    assert (c.outbox_id, c.kind, c.tenant_id, c.message_id) == (oid, "notification", "t_x", "m_1")
    assert (c.mail_from, c.object_id, c.attempts) == ("alice@acme.example", "o_payload", 0)
    assert before <= c.created_at and c.expires_at == c.created_at + 100
    assert await claim(services, "w2") == []  # leased
    async with services.db.session() as s:
        assert await outbox.depth(s) == 2
        assert not await outbox.item_done(s, oid)
        assert len(await outbox.list_pending(s)) == 2


async def test_unknown_kind_is_refused(services: Services) -> None:
    import pytest

    with pytest.raises(ValueError):
        await put(services, ["b@x.example"], kind="spam")


async def test_only_the_lease_owner_finishes(services: Services) -> None:
    await put(services, ["b@x.example", "c@y.example", "d@z.example"])
    got = {c.rcpt: c.recipient_id for c in await claim(services, "w1")}
    async with services.db.session() as s:
        assert not await outbox.mark_sent(s, got["b@x.example"], "w2", "250 ok")
        assert not await outbox.mark_bounced(s, got["c@y.example"], "w2", "550 no")
        assert not await outbox.mark_deferred(s, got["d@z.example"], "w2", "451", time.time())
        await s.commit()
    assert set(await state(services)) == {"b@x.example", "c@y.example", "d@z.example"}
    assert all(v == ("queued", 0, "w1") for v in (await state(services)).values())

    later = time.time() + 3600
    async with services.db.session() as s:
        assert await outbox.mark_sent(s, got["b@x.example"], "w1", "250 2.0.0 ok")
        assert await outbox.mark_bounced(s, got["c@y.example"], "w1", "550 5.1.1 unknown")
        assert await outbox.mark_deferred(s, got["d@z.example"], "w1", "451 4.3.0 later", later)
        await s.commit()
    assert await state(services) == {
        "b@x.example": ("sent", 1, None),
        "c@y.example": ("bounced", 1, None),
        "d@z.example": ("deferred", 1, None),
    }
    assert await claim(services, "w2") == []  # deferred until later
    async with services.db.session() as s:
        # finished recipients cannot be finished again, not even by the old owner
        assert not await outbox.mark_sent(s, got["b@x.example"], "w1", "250 again")
        assert await outbox.depth(s) == 1
        row = await s.get(OutboxRecipient, got["d@z.example"])
        assert (
            row is not None and row.next_attempt_at == later and row.last_reply == "451 4.3.0 later"
        )


async def test_expired_lease_is_reclaimable_and_the_old_owner_loses(services: Services) -> None:
    oid = await put(services, ["b@x.example"])
    [first] = await claim(services, "w1", lease=0.05)
    await asyncio.sleep(0.15)
    [second] = await claim(services, "w2")
    assert first.recipient_id == second.recipient_id
    async with services.db.session() as s:
        assert not await outbox.mark_sent(s, first.recipient_id, "w1", "250 late")
        assert await outbox.mark_sent(s, second.recipient_id, "w2", "250 ok")
        await s.commit()
    async with services.db.session() as s:
        assert await outbox.item_done(s, oid)
        assert await outbox.depth(s) == 0


async def test_release_gives_the_lease_back_without_an_attempt(services: Services) -> None:
    await put(services, ["b@x.example"])
    [c] = await claim(services, "w1")
    async with services.db.session() as s:
        assert not await outbox.release(s, c.recipient_id, "w2")
        assert await outbox.release(s, c.recipient_id, "w1")
        await s.commit()
    [again] = await claim(services, "w2")
    assert again.recipient_id == c.recipient_id and again.attempts == 0


async def test_concurrent_claimants_never_share_a_recipient(services: Services) -> None:
    total = 120
    rcpts = [f"r{i}@x.example" for i in range(total)]
    for start in range(0, total, 40):
        await put(services, rcpts[start : start + 40])
    taken: dict[str, list[int]] = {}

    async def worker(name: str) -> None:
        mine = taken.setdefault(name, [])
        idle = 0
        while idle < 3:
            got = await claim(services, name, limit=7)
            mine.extend(c.recipient_id for c in got)
            idle = 0 if got else idle + 1
            await asyncio.sleep(0)

    await asyncio.gather(*(worker(f"w{i}") for i in range(6)))
    everything = [rid for ids in taken.values() for rid in ids]
    assert len(everything) == len(set(everything)), "a recipient was leased twice"
    assert len(everything) == total
    # (on SQLite one worker may win every round while the others wait for the write lock:
    # allowed, so there is no "every worker got some" assertion here)
    leases = await state(services)
    owner_of = {}
    for name, ids in taken.items():
        for rid in ids:
            owner_of[rid] = name
    async with services.db.session() as s:
        rows = (await s.execute(select(OutboxRecipient))).scalars().all()
        assert all(r.lease_owner == owner_of[r.id] for r in rows)
    assert len(leases) == total
