"""Operator actions on the outbox (hold, release, retry) and the once-only delay warning,
on both databases."""

from __future__ import annotations

import dataclasses
import time

from core import outbox
from core.models import OutboxItem, OutboxRecipient
from core.services import Services
from tests.core.test_outbox import claim, put, state


async def defer_all(svc: Services, owner: str, until: float) -> None:
    got = await claim(svc, owner)
    async with svc.db.session() as s:
        for c in got:
            assert await outbox.mark_deferred(s, c.recipient_id, owner, "451 4.3.0 busy", until)
        await s.commit()


async def test_hold_skips_delivery_and_release_makes_due(services: Services) -> None:
    oid = await put(services, ["b@x.example", "c@y.example"])
    other = await put(services, ["d@z.example"])
    async with services.db.session() as s:
        assert await outbox.hold(s, [oid]) == 2
        await s.commit()
    got = await claim(services, "w1")
    assert [c.outbox_id for c in got] == [other]  # only the other item
    assert (await state(services))["b@x.example"][0] == "held"
    async with services.db.session() as s:
        assert await outbox.hold(s, [oid]) == 0  # nothing pending any more
        assert not await outbox.item_done(s, oid)  # held is not done
        assert await outbox.depth(s) == 1  # held is not in the depth of work to do
        assert await outbox.release_held(s, [oid], grace=60) == 2
        assert await outbox.release_held(s, [oid], grace=60) == 0
        await s.commit()
    got = await claim(services, "w2")
    assert sorted(c.rcpt for c in got) == ["b@x.example", "c@y.example"]


async def test_hold_leaves_a_recipient_being_sent_alone(services: Services) -> None:
    oid = await put(services, ["b@x.example"])
    [c] = await claim(services, "w1")
    async with services.db.session() as s:
        assert await outbox.hold(s, [oid]) == 0  # leased: a worker is sending it now
        await s.commit()
    async with services.db.session() as s:
        assert await outbox.mark_sent(s, c.recipient_id, "w1", "250 ok")
        await s.commit()
    assert (await state(services))["b@x.example"][0] == "sent"


async def test_release_of_an_expired_item_grants_grace(services: Services) -> None:
    oid = await put(services, ["b@x.example"], lifetime=0)
    async with services.db.session() as s:
        await outbox.hold(s, [oid])
        await s.commit()
    before = time.time()
    async with services.db.session() as s:
        assert await outbox.release_held(s, [oid], grace=120) == 1
        await s.commit()
    async with services.db.session() as s:
        item = await s.get(OutboxItem, oid)
        assert item is not None and before + 119 <= item.expires_at <= time.time() + 121
    long = await put(services, ["c@y.example"], lifetime=86400)
    async with services.db.session() as s:
        await outbox.hold(s, [long])
        await outbox.release_held(s, [long], grace=120)
        await s.commit()
    async with services.db.session() as s:
        item = await s.get(OutboxItem, long)
        assert item is not None and item.expires_at - item.created_at == 86400  # untouched


async def test_retry_makes_deferred_due_now(services: Services) -> None:
    a = await put(services, ["b@x.example"])
    b = await put(services, ["c@y.example"])
    later = time.time() + 3600
    await defer_all(services, "w1", later)
    assert await claim(services, "w2") == []
    async with services.db.session() as s:
        assert await outbox.retry_now(s, [a]) == 1
        await s.commit()
    assert [c.outbox_id for c in await claim(services, "w2")] == [a]
    async with services.db.session() as s:
        assert await outbox.retry_now(s, [a]) == 0  # leased now, not deferred-and-idle
        assert await outbox.retry_now(s, None) == 1  # the whole queue: b
        await s.commit()
    assert [c.outbox_id for c in await claim(services, "w3")] == [b]


async def test_warning_is_marked_once(services: Services) -> None:
    await put(services, ["b@x.example"])
    [c] = await claim(services, "w1")
    async with services.db.session() as s:
        assert await outbox.mark_warned(s, c.recipient_id)
        assert not await outbox.mark_warned(s, c.recipient_id)
        await s.commit()
        row = await s.get(OutboxRecipient, c.recipient_id)
        assert row is not None and row.warned_at is not None
    await outbox_release(services, c)
    [again] = await claim(services, "w2")
    assert again.warned_at is not None
    assert not outbox.wants_warning(again, after=1, at=again.created_at + 10)


async def outbox_release(svc: Services, c: outbox.Claimed) -> None:
    async with svc.db.session() as s:
        assert await outbox.release(s, c.recipient_id, "w1")
        await s.commit()


def test_wants_warning_rules() -> None:
    base = outbox.Claimed(
        recipient_id=1,
        rcpt="b@x.example",
        attempts=3,
        outbox_id="q",
        kind="clear",
        tenant_id="t",
        message_id="m",
        mail_from="alice@acme.example",
        object_id="o",
        created_at=1000.0,
        expires_at=9000.0,
    )
    assert outbox.wants_warning(base, after=60, at=1060)
    assert not outbox.wants_warning(base, after=60, at=1059)  # not old enough
    assert not outbox.wants_warning(base, after=0, at=5000)  # turned off
    assert not outbox.wants_warning(dataclasses.replace(base, kind="dsn"), after=60, at=5000)
    assert not outbox.wants_warning(dataclasses.replace(base, mail_from=""), after=60, at=5000)
    assert not outbox.wants_warning(dataclasses.replace(base, warned_at=1100.0), 60, 5000)


def test_queue_delay_warning_setting() -> None:
    import pytest

    from core.config.loading import load_settings

    assert load_settings(path=None, env={}).queue_delay_warning == 4 * 3600
    assert (
        load_settings(path=None, env={"SEALMAIL_QUEUE_DELAY_WARNING": "0"}).queue_delay_warning == 0
    )
    assert (
        load_settings(
            path=None, env={}, overrides={"queue_delay_warning": "30m"}
        ).queue_delay_warning
        == 1800
    )
    with pytest.raises(Exception, match="queue_delay_warning"):
        load_settings(path=None, env={}, overrides={"queue_delay_warning": "soon"})
