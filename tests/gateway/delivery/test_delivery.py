"""Delivery to the sink relay: retries, bounces, DSNs, the worker loop."""

from __future__ import annotations

import asyncio
import socket
from email import message_from_bytes
from email.policy import default as default_policy

from sqlalchemy import select, update

from core.models import OutboxItem, OutboxRecipient
from gateway.intake.handler import build_gateway
from gateway.stamp import has_valid_stamp
from gateway.worker import run_once, run_worker
from tests.gateway.conftest import asend, make_message


async def send(gateway, tenant, message=None, rcpts=("bob@partner.example",)) -> None:  # noqa: ANN001
    await asend(
        gateway,
        message or make_message(),
        "alice@acme.example",
        list(rcpts),
        login=(tenant.username, tenant.password),
    )


async def outbox_rows(services) -> list[tuple[str, str, str, int]]:  # noqa: ANN001
    async with services.db.session() as s:
        rows = await s.execute(
            select(
                OutboxItem.kind,
                OutboxRecipient.rcpt,
                OutboxRecipient.state,
                OutboxRecipient.attempts,
            )
            .join(OutboxItem, OutboxItem.id == OutboxRecipient.outbox_id)
            .order_by(OutboxRecipient.id)
        )
        return [tuple(r) for r in rows.all()]


async def test_451_then_250_is_delivered_after_retry(gateway, tenant, gw_services, sink):
    sink.data_replies = ["451 4.3.0 try again later"]
    await send(gateway, tenant)
    await run_once(gw_services)
    assert await outbox_rows(gw_services) == [("clear", "bob@partner.example", "deferred", 1)]
    assert sink.messages == []
    await run_once(gw_services)  # not due yet (backoff ≥ 1 s in tests)
    assert sink.messages == []
    await asyncio.sleep(1.35)
    await run_once(gw_services)
    assert await outbox_rows(gw_services) == [("clear", "bob@partner.example", "sent", 2)]
    assert len(await sink.wait_for(1)) == 1


async def test_550_bounces_with_exactly_one_dsn(gateway, tenant, gw_services, sink):
    sink.rcpt_replies["bob@partner.example"] = "550 5.1.1 no such user here"
    await send(gateway, tenant, rcpts=("bob@partner.example", "carol@partner.example"))
    await run_once(gw_services)
    await run_once(gw_services)
    await run_once(gw_services)
    rows = await outbox_rows(gw_services)
    assert rows == [
        ("clear", "bob@partner.example", "bounced", 1),
        ("clear", "carol@partner.example", "sent", 1),
        ("dsn", "alice@acme.example", "sent", 1),
    ]
    received = await sink.wait_for(2)
    (dsn,) = [m for m in received if m.mail_from == "<>"]
    assert dsn.rcpt_tos == ["alice@acme.example"]
    parsed = message_from_bytes(dsn.content, policy=default_policy)
    assert parsed.get_content_type() == "multipart/report"
    assert parsed.get_param("report-type") == "delivery-status"
    status = [p for p in parsed.walk() if p.get_content_type() == "message/delivery-status"]
    text = status[0].as_string()
    assert "Final-Recipient: rfc822; bob@partner.example" in text
    assert "Status: 5.1.1" in text and "Action: failed" in text
    assert b"Hi there." not in dsn.content  # headers of the original only
    assert has_valid_stamp(gw_services.keyring.stamp_key, tenant.id, dsn.content)


async def test_failing_dsn_produces_no_further_dsn(gateway, tenant, gw_services, sink):
    sink.rcpt_replies["bob@partner.example"] = "550 5.1.1 no such user"
    sink.rcpt_replies["alice@acme.example"] = "550 5.1.1 sender gone too"
    await send(gateway, tenant)
    for _ in range(4):
        await run_once(gw_services)
    assert await outbox_rows(gw_services) == [
        ("clear", "bob@partner.example", "bounced", 1),
        ("dsn", "alice@acme.example", "bounced", 1),
    ]
    assert sink.messages == []


async def test_expired_item_bounces(gateway, tenant, gw_services, sink):
    sink.data_replies = ["451 4.3.0 later"]
    await send(gateway, tenant)
    await run_once(gw_services)
    async with gw_services.db.session() as s:
        await s.execute(update(OutboxItem).values(expires_at=0))
        await s.execute(update(OutboxRecipient).values(next_attempt_at=0))
        await s.commit()
    await run_once(gw_services)
    await run_once(gw_services)
    rows = await outbox_rows(gw_services)
    assert rows[0] == ("clear", "bob@partner.example", "bounced", 2)
    assert rows[1] == ("dsn", "alice@acme.example", "sent", 1)
    (dsn,) = await sink.wait_for(1)
    assert b"Status: 4.4.7" in dsn.content


async def test_unreachable_relay_defers(gw_services, tenant):
    from dataclasses import replace

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    svc = type(gw_services)(
        **{
            **gw_services.__dict__,
            "settings": replace(gw_services.settings, relay=f"127.0.0.1:{dead}"),
        }
    )
    gw = build_gateway(svc)
    address = await gw.start()
    try:
        await send(address, tenant)
        await run_once(svc)
    finally:
        await gw.stop(1)
    assert await outbox_rows(svc) == [("clear", "bob@partner.example", "deferred", 1)]


async def test_worker_wakes_on_intake_and_stops(gw_services, tenant, sink):
    wakeup, stop = asyncio.Event(), asyncio.Event()
    gw = build_gateway(gw_services, wakeup=wakeup)
    address = await gw.start()
    gw_services_settings = gw_services.settings
    assert gw_services_settings.queue_poll_interval < 1
    worker = asyncio.create_task(run_worker(gw_services, stop, wakeup))
    try:
        await send(address, tenant, make_message(subject="[encrypt] hello"))
        (note,) = await sink.wait_for(1, timeout=5)
        assert note.rcpt_tos == ["bob@partner.example"]
    finally:
        stop.set()
        await asyncio.wait_for(worker, 5)
        await gw.stop(1)


async def test_failure_unrecordable_while_database_down_is_deferred_next_round(
    gateway, tenant, gw_services, sink, monkeypatch
):
    """A delivery fails on our side (say the database went away mid-item) and even the
    failure cannot be written: the recipient must not wait out its whole lease once the
    database is back — the next round defers it with the usual backoff."""
    from core import outbox
    from core.models import now
    from gateway.delivery import drain as delivery

    await send(gateway, tenant, rcpts=("gina@partner.example",))
    real_item, real_defer = delivery._deliver_item, outbox.mark_deferred
    broken = {"item": 1, "defer": 1}

    async def item_fails(*args):  # noqa: ANN002
        if broken["item"]:
            broken["item"] -= 1
            raise RuntimeError("database went away")
        await real_item(*args)

    async def defer_fails(*args):  # noqa: ANN002
        if broken["defer"]:
            broken["defer"] -= 1
            raise OSError("database still away")
        return await real_defer(*args)

    monkeypatch.setattr(delivery, "_deliver_item", item_fails)
    monkeypatch.setattr(outbox, "mark_deferred", defer_fails)
    await run_once(gw_services)  # processed, then the delivery and its record both fail
    async with gw_services.db.session() as s:
        row = (await s.execute(select(OutboxRecipient))).scalar_one()
    assert row.lease_owner and row.lease_until > now() + 60  # still leased
    await run_once(gw_services)  # the database is back: deferred first, not sent yet
    async with gw_services.db.session() as s:
        row = (await s.execute(select(OutboxRecipient))).scalar_one()
    assert row.state == "deferred" and row.lease_owner is None and row.attempts == 1
    assert row.next_attempt_at < now() + 60 and "4.3.0" in row.last_reply
    await asyncio.sleep(max(0.0, row.next_attempt_at - now()) + 0.1)
    await run_once(gw_services)
    assert len(await sink.wait_for(1)) == 1
    assert await outbox_rows(gw_services) == [("clear", "gina@partner.example", "sent", 2)]


async def test_accepted_by_next_hop_while_database_down_is_not_sent_again(
    gateway, tenant, gw_services, sink, monkeypatch
):
    """The next hop said 250 and the database went away before that was written: the
    worker keeps the replies and writes them when it is back — no second copy."""
    from core.models import now
    from gateway.delivery import drain as delivery

    await send(gateway, tenant, rcpts=("hal@partner.example",))
    real_record = delivery._record_in  # the write of one outcome, alone or with others
    broken = [1]

    async def record_fails(*args):  # noqa: ANN002
        if broken:
            broken.pop()
            raise OSError("database went away")
        return await real_record(*args)

    monkeypatch.setattr(delivery, "_record_in", record_fails)
    await run_once(gw_services)
    assert len(await sink.wait_for(1)) == 1
    async with gw_services.db.session() as s:
        row = (await s.execute(select(OutboxRecipient))).scalar_one()
    assert row.state != "sent" and row.lease_until > now() + 60  # not written yet
    await run_once(gw_services)  # the database is back: the kept 250 is written
    assert await outbox_rows(gw_services) == [("clear", "hal@partner.example", "sent", 1)]
    await asyncio.sleep(0.3)
    assert len(sink.messages) == 1


async def _claimed_outcomes(gateway, tenant, gw_services, n: int):  # noqa: ANN001, ANN202
    """``n`` clear messages queued and claimed for delivery, as a round holds them."""
    from core import outbox
    from gateway.pipeline.runner import process_pending

    for i in range(n):
        await send(
            gateway, tenant, make_message(message_id=f"<g{i}@x>"), rcpts=(f"r{i}@p.example",)
        )
    await process_pending(gw_services)
    async with gw_services.db.write_gate.hold(), gw_services.db.session() as s:
        claimed = await outbox.claim_due(s, "me", 50, 300, not gw_services.db.is_sqlite)
    assert len(claimed) == n
    return claimed


async def test_a_rounds_outcomes_are_written_together(gateway, tenant, gw_services, sink):
    """Deliveries that finish while another outcome is being written share one
    transaction: five outcomes, two commits (the first alone, the four that waited)."""
    from sqlalchemy import event

    from gateway.delivery.drain import _Outcomes
    from gateway.delivery.outcomes import DeliveryState
    from gateway.delivery.relay import Reply

    claimed = await _claimed_outcomes(gateway, tenant, gw_services, 5)
    commits: list[object] = []
    engine = gw_services.db.engine.sync_engine

    def count(conn: object) -> None:
        commits.append(conn)

    event.listen(engine, "commit", count)
    state = DeliveryState()
    try:
        outcomes = _Outcomes(gw_services, state)
        await asyncio.gather(
            *(
                outcomes.write("me", [c], b"x", {c.rcpt: Reply(250, "2.0.0 ok")}, False)
                for c in claimed
            )
        )
    finally:
        event.remove(engine, "commit", count)
    assert len(commits) == 2 and not state.unrecorded
    assert [r[2] for r in await outbox_rows(gw_services)] == ["sent"] * 5


async def test_one_bad_outcome_does_not_keep_the_others(
    gateway, tenant, gw_services, sink, monkeypatch
):
    """A batch whose transaction fails is written outcome by outcome: the others are
    recorded at once, the failing one is kept for the next round."""
    from gateway.delivery import drain
    from gateway.delivery.outcomes import DeliveryState
    from gateway.delivery.relay import Reply

    claimed = await _claimed_outcomes(gateway, tenant, gw_services, 4)
    real = drain._record_in
    bad = claimed[2].rcpt

    async def fails_for_one(services, s, owner, group, *rest):  # noqa: ANN001, ANN002
        if group[0].rcpt == bad:
            raise OSError("this one cannot be written")
        return await real(services, s, owner, group, *rest)

    monkeypatch.setattr(drain, "_record_in", fails_for_one)
    state = DeliveryState()
    outcomes = drain._Outcomes(gw_services, state)
    await asyncio.gather(
        *(outcomes.write("me", [c], b"x", {c.rcpt: Reply(250, "2.0.0 ok")}, False) for c in claimed)
    )
    rows = {r[1]: r[2] for r in await outbox_rows(gw_services)}
    assert {c.rcpt for c in claimed if rows[c.rcpt] == "sent"} == {c.rcpt for c in claimed} - {bad}
    assert len(state.unrecorded) == 1
    monkeypatch.setattr(drain, "_record_in", real)
    await state.record_unrecorded()  # the next round writes it
    rows = {r[1]: r[2] for r in await outbox_rows(gw_services)}
    assert rows[bad] == "sent" and not state.unrecorded
