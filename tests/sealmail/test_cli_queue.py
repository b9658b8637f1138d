"""``sealmail queue list|show|retry|hold|release`` as an operator runs it (both databases):
filters, per-recipient detail without content, state changes, audit, exit codes."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from core import outbox
from core.config.loading import load_settings
from core.models import AuditEvent, Message, MessageRecipient, OutboxRecipient, Tenant
from core.services import Services
from tests.sealmail.test_cli import sm, workdir  # noqa: F401 - the fixture


def _services(wd: Path, env: dict[str, str]) -> Services:
    return Services.open(load_settings(wd / "sealmail.toml", env=env))


async def _fill(wd: Path, env: dict[str, str]) -> dict[str, str]:
    """An outbox item with a deferred and a queued recipient, a DSN item, and an incoming
    message still being processed whose outbox item went out."""
    svc = _services(wd, env)
    try:
        async with svc.db.session() as s:
            tenant = (await s.execute(select(Tenant))).scalars().first()
            assert tenant is not None
            later = time.time() + 3600
            item = await outbox.enqueue(
                s,
                kind="clear",
                tenant_id=tenant.id,
                mail_from="alice@acme.example",
                recipients=["bob@x.example", "carol@y.example"],
                object_id="o_secret_body",
                lifetime=86400,
                message_id="m_out",
            )
            dsn = await outbox.enqueue(
                s,
                kind="dsn",
                tenant_id=tenant.id,
                mail_from="",
                recipients=["alice@acme.example"],
                object_id="o_dsn",
                lifetime=86400,
            )
            s.add(
                Message(
                    id="m_in",
                    tenant_id=tenant.id,
                    mail_from="dave@acme.example",
                    raw_object_id="o_raw",
                    state="received",
                    last_error="EncryptionFailed: no key yet",
                    next_attempt_at=later,
                )
            )
            s.add(MessageRecipient(message_id="m_in", rcpt="erin@z.example", disposition="pgp"))
            await s.flush()
            sent = await outbox.enqueue(
                s,
                kind="encrypted",
                tenant_id=tenant.id,
                mail_from="dave@acme.example",
                recipients=["erin@z.example"],
                object_id="o_enc",
                lifetime=86400,
                message_id="m_in",
            )
            await s.commit()
        async with svc.db.session() as s:
            rows = (
                (await s.execute(select(OutboxRecipient).order_by(OutboxRecipient.id)))
                .scalars()
                .all()
            )
            rows[0].state, rows[0].attempts, rows[0].next_attempt_at = "deferred", 2, later
            rows[0].last_reply = "451 4.7.0 try again later"
            rows[3].state = "deferred"  # erin: deferred too
            rows[3].next_attempt_at = later
            await s.commit()
        return {"item": item.id, "dsn": dsn.id, "sent": sent.id, "tenant": tenant.name}
    finally:
        await svc.close()


async def _states(wd: Path, env: dict[str, str]) -> dict[str, tuple[str, float]]:
    svc = _services(wd, env)
    try:
        async with svc.db.session() as s:
            rows = (await s.execute(select(OutboxRecipient))).scalars().all()
            return {r.rcpt: (r.state, r.next_attempt_at) for r in rows}
    finally:
        await svc.close()


async def _audit(wd: Path, env: dict[str, str]) -> list[tuple[str, str]]:
    svc = _services(wd, env)
    try:
        async with svc.db.session() as s:
            rows = (await s.execute(select(AuditEvent).order_by(AuditEvent.id))).scalars().all()
            return [(r.action, r.subject_id) for r in rows if r.action.startswith("queue.")]
    finally:
        await svc.close()


def test_queue_commands(workdir: tuple[Path, dict[str, str]]) -> None:  # noqa: F811
    wd, env = workdir
    ids = asyncio.run(_fill(wd, env))

    def q(*args: str) -> Any:
        p = sm("queue", *args, "--config", str(wd / "sealmail.toml"), cwd=wd, env=env)
        return p

    def qj(*args: str) -> Any:
        p = q(*args, "--json")
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    # list, with filters
    rows = qj("list")
    assert sorted((r["queue_id"], r["recipient"], r["state"]) for r in rows) == sorted(
        [
            (ids["item"], "bob@x.example", "deferred"),
            (ids["item"], "carol@y.example", "queued"),
            (ids["dsn"], "alice@acme.example", "queued"),
            (ids["sent"], "erin@z.example", "deferred"),
            ("m_in", "-", "processing"),
        ]
    )
    assert [r["recipient"] for r in qj("list", "--state", "deferred")] == [
        "bob@x.example",
        "erin@z.example",
    ]
    assert [r["queue_id"] for r in qj("list", "--state", "processing")] == ["m_in"]
    assert len(qj("list", "--tenant", ids["tenant"])) == 5
    p = q("list", "--tenant", "nobody")
    assert p.returncode == 1 and p.stderr.count("\n") == 1 and "nobody" in p.stderr
    assert q("list", "--state", "lost").returncode == 2

    # show: an outbox item, then an incoming message with its outbox item
    shown = qj("show", ids["item"])
    assert (shown["kind"], shown["from"], shown["message_id"]) == (
        "clear",
        "alice@acme.example",
        "m_out",
    )
    bob = shown["recipients"][0]
    assert (bob["recipient"], bob["state"], bob["attempts"]) == ("bob@x.example", "deferred", 2)
    assert bob["last_reply"] == "451 4.7.0 try again later"
    assert "o_secret_body" not in json.dumps(shown)  # no pointer to content either
    msg = qj("show", "m_in")
    assert (msg["type"], msg["state"], msg["from"]) == ("message", "received", "dave@acme.example")
    assert msg["recipients"][0]["disposition"] == "pgp"
    assert [o["queue_id"] for o in msg["outbox"]] == [ids["sent"]]
    text = q("show", ids["item"])
    assert text.returncode == 0 and "bob@x.example" in text.stdout and "451 4.7.0" in text.stdout
    p = q("show", "q_nope")
    assert p.returncode == 1 and p.stderr == "sealmail: no queue entry 'q_nope'\n"

    # retry: usage errors, one item, then everything
    assert q("retry").returncode == 2
    assert q("retry", ids["item"], "--all").returncode == 2
    before = time.time()
    assert qj("retry", ids["item"])["recipients"] == 1
    states = asyncio.run(_states(wd, env))
    assert states["bob@x.example"][1] <= time.time() and states["bob@x.example"][1] >= before - 1
    assert states["erin@z.example"][1] > time.time() + 3000  # another item: untouched
    p = q("retry", "m_in")  # a message: its outbox item, and the message itself
    assert p.returncode == 0 and "1 recipient" in p.stdout and "restarted" in p.stdout
    assert asyncio.run(_states(wd, env))["erin@z.example"][1] <= time.time()
    assert "nothing deferred" in q("retry", "--all").stdout

    # hold and release
    assert qj("hold", ids["item"])["recipients"] == 2
    states = asyncio.run(_states(wd, env))
    assert states["bob@x.example"][0] == states["carol@y.example"][0] == "held"
    assert [r["state"] for r in qj("list", "--state", "held")] == ["held", "held"]
    assert "nothing to hold" in q("hold", ids["item"]).stdout
    p = q("release", ids["item"])
    assert p.returncode == 0 and "released 2 recipient" in p.stdout
    states = asyncio.run(_states(wd, env))
    assert states["bob@x.example"][0] == "queued" and states["bob@x.example"][1] <= time.time()
    assert "nothing held" in q("release", ids["item"]).stdout
    assert q("hold", "q_nope").returncode == 1

    assert asyncio.run(_audit(wd, env)) == [
        ("queue.retry", ids["item"]),
        ("queue.retry", "m_in"),
        ("queue.hold", ids["item"]),
        ("queue.release", ids["item"]),
    ]
