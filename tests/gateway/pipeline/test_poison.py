"""A message the pipeline cannot process because of its own content is not retried for
ever: after a few quick tries its sender gets a DSN naming the reason, the message is
``failed`` (kept sealed) and its recipients ``bounced``. Both databases, real SMTP in, the
real delivery worker out to a sink."""

from __future__ import annotations

import asyncio
import email.errors
import time
from email import message_from_bytes
from email.policy import default as default_policy

import pytest
from sqlalchemy import select

from core import error_kinds
from core.models import Message, MessageRecipient, OutboxItem, OutboxRecipient
from gateway.pipeline.table import HANDLERS
from gateway.worker import run_once
from tests.gateway.conftest import asend, make_message


async def _rows(services):  # noqa: ANN001, ANN202
    async with services.db.session() as s:
        m = (await s.execute(select(Message))).scalar_one()
        rcpts = (await s.execute(select(MessageRecipient))).scalars().all()
        outbox = (
            await s.execute(
                select(OutboxItem.kind, OutboxRecipient.rcpt, OutboxRecipient.state).join(
                    OutboxRecipient, OutboxRecipient.outbox_id == OutboxItem.id
                )
            )
        ).all()
    return m, rcpts, outbox


@pytest.mark.timeout(60)
async def test_content_error_bounces_after_a_few_quick_tries(
    gateway, tenant, gw_services, sink, monkeypatch
):
    passes = []

    async def undecodable(ctx, rcpts):  # noqa: ANN001, ANN202 - a content error in a pass
        passes.append(time.monotonic())
        raise email.errors.HeaderParseError("unparsable header")

    monkeypatch.setitem(HANDLERS, "to_outbox", undecodable)
    subject = "Quarterly figures"
    result = await asend(
        gateway,
        make_message(subject=subject, body="the figures themselves\r\n"),
        "alice@acme.example",
        ["bob@partner.example", "carol@other.example"],
        login=(tenant.username, tenant.password),
    )
    assert result == {}
    await run_once(gw_services)
    m, _, _ = await _rows(gw_services)
    assert m.state == "received" and m.attempts == 1
    assert error_kinds.kind_of(m.last_error) == "content"
    assert "a header could not be decoded" in m.last_error
    deadline = time.monotonic() + 30
    while not sink.messages and time.monotonic() < deadline:
        await run_once(gw_services)
        await asyncio.sleep(0.2)
    (dsn,) = await sink.wait_for(1)
    assert len(passes) == error_kinds.CONTENT_TRIES
    assert passes[-1] - passes[0] < 15  # quick tries (queue_min_backoff is 1 s here)

    m, rcpts, outbox = await _rows(gw_services)
    assert m.state == "failed" and m.attempts == error_kinds.CONTENT_TRIES
    assert sorted((r.rcpt, r.state, r.disposition) for r in rcpts) == [
        ("bob@partner.example", "done", "bounced"),
        ("carol@other.example", "done", "bounced"),
    ]
    assert all("5.6.0" in r.reason and "header could not be decoded" in r.reason for r in rcpts)
    assert outbox == [("dsn", "alice@acme.example", "sent")]  # nothing else, nothing waiting

    assert dsn.mail_from in ("", "<>") and dsn.rcpt_tos == ["alice@acme.example"]
    parsed = message_from_bytes(dsn.content, policy=default_policy)
    assert parsed.get_content_type() == "multipart/report"
    text, status, headers = parsed.get_payload()
    readable = text.get_content()
    assert "the message could not be processed: a header could not be decoded" in readable
    blocks = status.get_payload()
    assert sorted(b["Final-Recipient"] for b in blocks[1:]) == [
        "rfc822; bob@partner.example",
        "rfc822; carol@other.example",
    ]
    assert {b["Status"] for b in blocks[1:]} == {"5.6.0"} and {b["Action"] for b in blocks[1:]} == {
        "failed"
    }
    assert headers.get_content_type() == "text/rfc822-headers"
    assert f"Subject: {subject}" in headers.get_payload()
    assert b"the figures themselves" not in dsn.content  # the sender's headers, not the body


@pytest.mark.timeout(60)
async def test_our_outage_is_never_bounced(gateway, tenant, gw_services, sink):
    """The same number of failed passes, but the fault is ours (a sealed object missing
    from our store): no attempt counted, no DSN, and the message goes once it is back."""
    from pathlib import Path

    result = await asend(
        gateway,
        make_message(subject="[secure] x"),
        "alice@acme.example",
        ["bob@partner.example"],
        login=(tenant.username, tenant.password),
    )
    assert result == {}
    m, _, _ = await _rows(gw_services)
    (raw_file,) = list(Path(gw_services.settings.archive_path).rglob(m.raw_object_id))
    hidden = raw_file.with_name("hidden")
    raw_file.rename(hidden)
    for _ in range(error_kinds.CONTENT_TRIES + 1):
        async with gw_services.db.session() as s:
            (await s.get(Message, m.id)).next_attempt_at = 0
            await s.commit()
        await run_once(gw_services)
    m, _, outbox = await _rows(gw_services)
    assert m.state == "received" and m.attempts == 0 and outbox == []
    assert error_kinds.kind_of(m.last_error) == "outage"
    hidden.rename(raw_file)
    deadline = time.monotonic() + 15
    while (await _rows(gw_services))[0].state == "received" and time.monotonic() < deadline:
        await run_once(gw_services)
        await asyncio.sleep(0.2)
    m, _, outbox = await _rows(gw_services)
    assert m.state == "processed" and m.attempts == 0
    assert "dsn" not in [k for k, _, _ in outbox]
