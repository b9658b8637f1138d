"""core.quarantine on both databases: hold, release (rows set for the pipeline), reject
(one notice to the sender, without content), single decisions, tenant isolation, audit."""

from __future__ import annotations

import email
import email.policy
import json
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from core import quarantine
from core.accounts.tenants import create_tenant
from core.errors import NotFound
from core.ids import queue_id
from core.models import AuditEvent, Message, MessageRecipient, OutboxItem, OutboxRecipient
from core.services import Services

SECRET = "the merger closes on friday"
RAW = (
    "From: Alice <alice@acme.example>\r\nTo: bob@partner.example\r\nSubject: Project X\r\n"
    f"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n{SECRET}\r\n"
).encode()


async def make_held(
    services: Services, tenant_id: str, rcpts: tuple[str, ...] = ("bob@partner.example",)
) -> tuple[str, str]:
    """A message the pipeline held for ``rcpts`` (another recipient went out in clear)."""
    async with services.db.session() as s:
        raw = await services.vault.seal(s, tenant_id, RAW, "raw")
        msg = Message(
            id=queue_id(),
            tenant_id=tenant_id,
            mail_from="alice@acme.example",
            state="processed",
            raw_object_id=raw.id,
            size=len(RAW),
            next_attempt_at=99.0,
        )
        s.add(msg)
        await s.flush()
        for r in (*rcpts, "carol@partner.example"):
            s.add(MessageRecipient(message_id=msg.id, rcpt=r, state="done", disposition="clear"))
        await s.flush()
        held = await quarantine.hold(s, msg.id, tenant_id, list(rcpts), "deals", "keyword: merger")
        await s.commit()
        return msg.id, held.id


async def _tenant(services: Services, name: str, domain: str) -> str:
    async with services.db.session() as s:
        creds = await create_tenant(s, services.keyring, name, [domain])
        await s.commit()
    return creds.tenant_id


async def _recipients(services: Services, message_id: str) -> dict[str, MessageRecipient]:
    async with services.db.session() as s:
        rows = await s.execute(
            select(MessageRecipient).where(MessageRecipient.message_id == message_id)
        )
        return {r.rcpt: r for r in rows.scalars()}


async def _actions(services: Services) -> list[str]:
    async with services.db.session() as s:
        rows = await s.execute(select(AuditEvent.action).order_by(AuditEvent.id))
        return [a for a in rows.scalars() if a.startswith("quarantine.")]


async def test_hold_then_release_hands_back_to_pipeline(services: Services) -> None:
    tid = await _tenant(services, "Acme", "acme.example")
    message_id, held_id = await make_held(services, tid)
    rows = await _recipients(services, message_id)
    assert (rows["bob@partner.example"].disposition, rows["bob@partner.example"].state) == (
        "hold",
        "done",
    )
    async with services.db.session() as s:
        assert await quarantine.count_held(s, tid) == 1
        held = await quarantine.release(s, held_id, tid, "officer@acme.example")
    assert (held.state, held.decided_by) == ("released", "officer@acme.example")
    rows = await _recipients(services, message_id)
    assert (rows["bob@partner.example"].override, rows["bob@partner.example"].state) == (
        "released",
        "pending",
    )
    assert rows["carol@partner.example"].override == ""  # not held, not touched
    assert rows["carol@partner.example"].state == "done"
    async with services.db.session() as s:
        msg = await s.get(Message, message_id)
        assert (msg.state, msg.next_attempt_at) == ("received", 0.0)
        assert await quarantine.count_held(s, tid) == 0
        with pytest.raises(quarantine.AlreadyDecided):
            await quarantine.release(s, held_id, tid, "officer@acme.example")
    async with services.db.session() as s:
        with pytest.raises(quarantine.AlreadyDecided):
            await quarantine.reject(services, s, held_id, tid, "officer@acme.example")
    assert await _actions(services) == ["quarantine.hold", "quarantine.release"]


async def test_reject_sends_one_notice_without_content(services: Services) -> None:
    tid = await _tenant(services, "Acme", "acme.example")
    message_id, held_id = await make_held(services, tid)
    async with services.db.session() as s:
        await quarantine.reject(services, s, held_id, tid, "officer@acme.example", note="no")
    rows = await _recipients(services, message_id)
    assert (rows["bob@partner.example"].state, rows["bob@partner.example"].disposition) == (
        "done",
        "reject",
    )
    async with services.db.session() as s:
        items = (await s.execute(select(OutboxItem))).scalars().all()
        assert len(items) == 1
        item = items[0]
        assert (item.kind, item.mail_from, item.message_id) == ("dsn", "", message_id)
        rcpts = (await s.execute(select(OutboxRecipient.rcpt))).scalars().all()
        assert rcpts == ["alice@acme.example"]
        data = await services.vault.read(s, tid, item.object_id)
        msg = await s.get(Message, message_id)
        assert msg.state == "processed"  # nothing for the pipeline to do
    notice = email.message_from_bytes(data, policy=email.policy.default)
    text = notice.get_body(("plain",)).get_content()
    assert "deals" in text and "compliance officer rejected" in text
    assert SECRET not in data.decode() and "Project X" not in data.decode()
    async with services.db.session() as s:
        event = (
            await s.execute(select(AuditEvent).where(AuditEvent.action == "quarantine.reject"))
        ).scalar_one()
        assert event.actor == "officer@acme.example"
        assert json.loads(event.detail)["notice"] == item.id


async def test_other_tenant_cannot_see_or_decide(services: Services) -> None:
    a = await _tenant(services, "Acme", "acme.example")
    b = await _tenant(services, "Beta", "beta.example")
    message_id, held_id = await make_held(services, a)
    async with services.db.session() as s:
        assert await quarantine.list_held(s, b) == []
        with pytest.raises(NotFound):
            await quarantine.get(s, held_id, b)
        with pytest.raises(NotFound):
            await quarantine.release(s, held_id, b, "eve@beta.example")
        with pytest.raises(NotFound):
            await quarantine.reject(services, s, held_id, b, "eve@beta.example")
        assert [h.id for h, _ in await quarantine.list_held(s, a)] == [held_id]
    rows = await _recipients(services, message_id)
    assert rows["bob@partner.example"].override == ""


def test_plain_notice_names_rule_not_content() -> None:
    tenant = SimpleNamespace(display_name="Acme Ltd", name="Acme")
    held = SimpleNamespace(message_id="Q1", recipients='["bob@x.example"]', rule="deals")
    raw = quarantine.plain_notice(tenant, held, "", "alice@acme.example", "n@acme.example")  # type: ignore[arg-type]
    assert b"deals" in raw and b"Q1" in raw
