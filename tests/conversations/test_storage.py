"""What the conversations package stores, on both databases: a message written in the
portal stored sealed as ``received``, threads found by hashed Message-IDs (never another
tenant's), and the sender's controls with their events."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import select

from conversations import control, events, submit, threads
from core.accounts.tenants import create_tenant
from core.errors import NotFound
from core.models import AuditEvent, Message, MessageRecipient, PortalAccess
from core.services import Services


async def _tenant(services: Services, name: str = "Acme") -> str:
    async with services.db.session() as s:
        creds = await create_tenant(s, services.keyring, name, [f"{name.lower()}.example"])
        await s.commit()
    return creds.tenant_id


async def test_submit_stores_sealed_and_received(services: Services) -> None:
    tid = await _tenant(services)
    pieces = iter([b"From: bob@partner.example\r\nSubject: secret subject\r\n\r\n", b"body\r\n"])
    qid = await submit.submit(
        services,
        tid,
        "bob@partner.example",
        ["alice@acme.example", "carol@other.example"],
        pieces,
        origin="reply",
        parent_id="m_parent",
        thread_id="m_thread",
        client="192.0.2.7",
    )
    async with services.db.session() as s:
        m = await s.get(Message, qid)
        rcpts = (
            (
                await s.execute(
                    select(MessageRecipient.rcpt).where(MessageRecipient.message_id == qid)
                )
            )
            .scalars()
            .all()
        )
        raw = await services.vault.read(s, tid, m.raw_object_id)
    assert (m.state, m.origin, m.parent_id, m.thread_id) == (
        "received",
        "reply",
        "m_parent",
        "m_thread",
    )
    assert m.mail_from == "bob@partner.example" and sorted(rcpts) == [
        "alice@acme.example",
        "carol@other.example",
    ]
    assert raw.startswith(b"Received: from sealmail portal ([192.0.2.7])")
    assert raw.endswith(b"Subject: secret subject\r\n\r\nbody\r\n")
    assert m.size == len(raw) - raw.index(b"From:")
    files = [p for p in Path(services.settings.data_dir).rglob("*") if p.is_file()]
    assert not any(b"secret subject" in p.read_bytes() for p in files)


async def test_submit_refuses_what_is_not_a_message(services: Services) -> None:
    tid = await _tenant(services)
    with pytest.raises(ValueError):
        await submit.submit(services, tid, "a@b.example", [], iter([b"x"]), origin="reply")
    with pytest.raises(ValueError):
        await submit.submit(services, tid, "a@b.example", ["c@d.example"], iter([]), origin="spam")


async def test_parent_by_headers(services: Services) -> None:
    acme, other = await _tenant(services), await _tenant(services, "Other")
    t = time.time()
    async with services.db.session() as s:
        for mid, tenant, msgid, at in (
            ("m_a", acme, "a@acme.example", t),
            ("m_b", acme, "b@acme.example", t + 1),
            ("m_x", other, "x@acme.example", t),
        ):
            s.add(
                Message(
                    id=mid,
                    tenant_id=tenant,
                    mail_from="",
                    raw_object_id="o",
                    received_at=at,
                    msgid_hash=threads.msgid_hash(tenant, msgid),
                )
            )
        await s.commit()
        find = threads.parent_by_headers
        assert (await find(s, acme, "<a@ACME.example>", "")).id == "m_a"
        assert (await find(s, acme, "<nope@x>", "<a@acme.example> <b@acme.example>")).id == "m_b"
        assert (await find(s, acme, "", "<b@acme.example> <a@acme.example>")).id == "m_a"
        assert await find(s, acme, "<x@acme.example>", "") is None  # another tenant's
        assert await find(s, acme, "garbage", "") is None
    assert threads.msgids("x <a@b> y <c@d>") == ["a@b", "c@d"]
    assert threads.msgid_hash(acme, "<A@B.example>") != threads.msgid_hash(other, "<A@B.example>")


async def test_revoke_and_expiry_are_events_and_audited(services: Services) -> None:
    tid = await _tenant(services)
    t = time.time()
    async with services.db.session() as s:
        s.add(Message(id="m_1", tenant_id=tid, mail_from="alice@acme.example", raw_object_id="o"))
        for i, rcpt in enumerate(("bob@x.example", "carol@y.example")):
            s.add(
                PortalAccess(
                    id=f"a_{i}",
                    token_hash=f"{i:064d}",
                    message_id="m_1",
                    tenant_id=tid,
                    recipient=rcpt,
                    expires_at=t + 3600,
                )
            )
        s.add(
            PortalAccess(
                id="a_author",
                token_hash="f" * 64,
                message_id="m_1",
                tenant_id=tid,
                recipient="dave@z.example",
                expires_at=t + 3600,
                kind="author",
            )
        )
        await s.commit()
        msg = await control.message_of(s, tid, "m_1")
        with pytest.raises(NotFound):
            await control.message_of(s, "another-tenant", "m_1")
        with pytest.raises(NotFound):
            await control.revoke(
                s, msg, "cli", "dave@z.example"
            )  # an author's copy is not a recipient's
        assert await control.revoke(s, msg, "cli", "BOB@x.example") == ["bob@x.example"]
        assert await control.revoke(s, msg, "cli", "bob@x.example") == []
        assert await control.set_expiry(s, msg, "cli", t + 60) == [
            "bob@x.example",
            "carol@y.example",
        ]
        await s.commit()
        rows = {a.recipient: a for a in (await s.execute(select(PortalAccess))).scalars()}
        kinds = [(e.kind, e.recipient) for e in await events.of_message(s, tid, "m_1")]
        audited = (await s.execute(select(AuditEvent.action))).scalars().all()
    assert rows["bob@x.example"].revoked and rows["bob@x.example"].revoked_by == "cli"
    assert not rows["carol@y.example"].revoked and rows["carol@y.example"].expires_at == t + 60
    assert rows["dave@z.example"].expires_at == t + 3600
    assert kinds == [
        ("revoked", "bob@x.example"),
        ("expiry_changed", "bob@x.example"),
        ("expiry_changed", "carol@y.example"),
    ]
    assert "message.revoked" in audited and "message.expiry_changed" in audited
    with pytest.raises(ValueError):
        events.record(s, tid, "m_1", "exploded")
