"""outbox.post(): every mail sealmail writes is sealed under the tenant's keys and queued
in one step (both databases)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from core import outbox
from core.accounts.tenants import create_tenant
from core.models import OutboxItem, OutboxRecipient, SealedObject
from core.services import Services
from tests.helpers.stores import listing

MARKER = b"CLEAR-TEXT-MARKER-7f3a9c"
RAW = (
    b"From: notices@acme.example\r\nTo: bob@x.example\r\nSubject: hello\r\n\r\n" + MARKER + b"\r\n"
)


async def tenant(svc: Services, name: str = "Acme") -> str:
    async with svc.db.session() as s:
        creds = await create_tenant(s, svc.keyring, name, [f"{name.lower()}.example"])
        await s.commit()
    return creds.tenant_id


async def post(svc: Services, tid: str, **kw: object) -> str:
    args: dict[str, object] = {
        "kind": "notification",
        "tenant_id": tid,
        "mail_from": "notices@acme.example",
        "recipients": ["bob@x.example", "carol@y.example"],
        "raw": RAW,
        "lifetime": 600.0,
        "message_id": "m_post",
    }
    args.update(kw)
    async with svc.db.session() as s:
        item = await outbox.post(s, svc.vault, **args)  # type: ignore[arg-type]
        await s.commit()
    return item.id


async def test_post_seals_and_queues(services: Services) -> None:
    tid = await tenant(services)
    before = time.time()
    oid = await post(services, tid)
    async with services.db.session() as s:
        got = await outbox.get_item(s, oid)
        assert got is not None
        item, rcpts = got
        assert (item.kind, item.tenant_id, item.mail_from, item.message_id) == (
            "notification",
            tid,
            "notices@acme.example",
            "m_post",
        )
        assert item.require_tls is False
        assert before <= item.created_at and item.expires_at == item.created_at + 600.0
        assert [(r.rcpt, r.state, r.attempts) for r in rcpts] == [
            ("bob@x.example", "queued", 0),
            ("carol@y.example", "queued", 0),
        ]
        assert all(r.next_attempt_at == item.created_at for r in rcpts)
        # The object opens through the vault to exactly the bytes posted ...
        obj = await s.get(SealedObject, item.object_id)
        assert obj is not None and (obj.tenant_id, obj.kind) == (tid, "outbound")
        assert await services.vault.read(s, tid, item.object_id) == RAW
    # ... and nothing of them waits in the store in clear.
    with services.store.open(obj.storage_name) as fh:
        blob = fh.read()
    assert MARKER not in blob and RAW not in blob
    # Delivery sees it like any queued item.
    async with services.db.session() as s:
        claimed = await outbox.claim_due(s, "w1", 10, 60, not services.db.is_sqlite)
    assert sorted(c.rcpt for c in claimed) == ["bob@x.example", "carol@y.example"]
    assert {(c.outbox_id, c.object_id, c.kind) for c in claimed} == {
        (oid, item.object_id, "notification")
    }


async def test_post_keeps_require_tls(services: Services) -> None:
    tid = await tenant(services)
    tls = await post(services, tid, kind="clear", require_tls=True, recipients=["b@x.example"])
    plain = await post(services, tid, kind="dsn", mail_from="", message_id=None)
    async with services.db.session() as s:
        a, b = await s.get(OutboxItem, tls), await s.get(OutboxItem, plain)
        assert a is not None and a.require_tls is True and a.kind == "clear"
        assert b is not None and b.require_tls is False and b.kind == "dsn"
        assert b.mail_from == "" and b.message_id is None


async def test_each_post_is_its_own_object(services: Services) -> None:
    tid = await tenant(services)
    first, second = await post(services, tid), await post(services, tid)
    async with services.db.session() as s:
        a, b = await s.get(OutboxItem, first), await s.get(OutboxItem, second)
        assert a is not None and b is not None and a.object_id != b.object_id
        for item in (a, b):
            assert await services.vault.read(s, tid, item.object_id) == RAW


async def test_unknown_kind_is_refused_before_sealing(services: Services) -> None:
    tid = await tenant(services)
    stored = listing(services.store)
    with pytest.raises(ValueError):
        await post(services, tid, kind="spam")
    assert listing(services.store) == stored
    async with services.db.session() as s:
        for model in (OutboxItem, OutboxRecipient):
            assert (await s.execute(select(func.count()).select_from(model))).scalar() == 0
        n_objects = select(func.count()).select_from(SealedObject)
        assert (await s.execute(n_objects.where(SealedObject.kind == "outbound"))).scalar() == 0


async def test_the_caller_commits(services: Services) -> None:
    tid = await tenant(services)
    async with services.db.session() as s:
        await outbox.post(
            s,
            services.vault,
            kind="notification",
            tenant_id=tid,
            mail_from="notices@acme.example",
            recipients=["bob@x.example"],
            raw=RAW,
            lifetime=600.0,
        )
        await s.rollback()
    async with services.db.session() as s:
        assert await outbox.depth(s) == 0
        assert (await s.execute(select(func.count()).select_from(SealedObject))).scalar() == 0
