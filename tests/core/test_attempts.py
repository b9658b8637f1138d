"""core.attempts on both databases: parallel tries never pass the limit, a right secret
gives its try back, a full counter refuses the others' tries too, the window runs out."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select, update

from core import attempts
from core.models import AttemptCounter
from core.services import Services


async def _tries(services: Services, key: str) -> int:
    async with services.db.session() as s:
        stmt = select(AttemptCounter.tries).where(AttemptCounter.key == key)
        return int((await s.execute(stmt)).scalar() or 0)


@pytest.mark.timeout(60)
async def test_parallel_tries_get_exactly_the_limit(services: Services) -> None:
    results = await asyncio.gather(
        *(attempts.claim(services.db, [("ip:192.0.2.1", 5)], 900.0) for _ in range(30))
    )
    assert sum(results) == 5
    assert await _tries(services, "ip:192.0.2.1") == 5


@pytest.mark.timeout(60)
async def test_a_full_counter_refuses_and_the_others_do_not_count(services: Services) -> None:
    assert await attempts.claim(services.db, [("user:x", 1)], 900.0)
    assert not await attempts.claim(services.db, [("ip:a", 3), ("user:x", 1)], 900.0)
    assert await _tries(services, "ip:a") == 0  # the refused try was not counted there
    await attempts.give_back(services.db, ["user:x"])  # a right secret
    assert await attempts.claim(services.db, [("ip:a", 3), ("user:x", 1)], 900.0)
    assert (await _tries(services, "ip:a"), await _tries(services, "user:x")) == (1, 1)


@pytest.mark.timeout(60)
async def test_a_new_window_starts_when_the_old_one_has_passed(services: Services) -> None:
    for _ in range(2):
        assert await attempts.claim(services.db, [("k", 2)], 900.0)
    assert not await attempts.claim(services.db, [("k", 2)], 900.0)
    async with services.db.session() as s:
        await s.execute(
            update(AttemptCounter).values(window_start=AttemptCounter.window_start - 901)
        )
        await s.commit()
    assert await attempts.claim(services.db, [("k", 2)], 900.0)
    assert await _tries(services, "k") == 1
