"""``sealmail message show|revoke|expire`` and the conversation defaults of ``sealmail tenant
update``, as an operator runs them (both databases): sentences and --json, changes recorded
as events and audited with actor ``cli``, one-line failures."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from sqlalchemy import select

from conversations import events
from core.config.loading import load_settings
from core.models import AuditEvent, Message, MessageRecipient, PortalAccess, Tenant
from core.services import Services
from tests.sealmail.test_cli import sm, workdir  # noqa: F401 - the fixture


async def _seed(wd: Path, env: dict[str, str]) -> str:
    """A sealed message of the demo tenant for bob and carol, delivered by mail to dave."""
    svc = Services.open(load_settings(wd / "sealmail.toml", env=env))
    try:
        async with svc.db.session() as s:
            tenant = (await s.execute(select(Tenant))).scalars().first()
            assert tenant is not None
            t = time.time()
            s.add(
                Message(
                    id="m_cli",
                    tenant_id=tenant.id,
                    mail_from="alice@demo.example",
                    raw_object_id="o_raw",
                    state="processed",
                    receipt=True,
                    reply_mode="sender",
                )
            )
            await s.flush()
            s.add_all(
                [
                    MessageRecipient(message_id="m_cli", rcpt=r, state="done", disposition=d)
                    for r, d in (
                        ("bob@x.example", "portal"),
                        ("carol@y.example", "portal"),
                        ("dave@demo.example", "clear"),
                    )
                ]
            )
            for i, rcpt in enumerate(("bob@x.example", "carol@y.example")):
                s.add(
                    PortalAccess(
                        id=f"a_cli{i}",
                        token_hash=f"{i:064d}",
                        message_id="m_cli",
                        tenant_id=tenant.id,
                        recipient=rcpt,
                        expires_at=t + 86400,
                    )
                )
            events.record(s, tenant.id, "m_cli", events.NOTIFIED, "bob@x.example", "delivery")
            await s.commit()
            return tenant.id
    finally:
        await svc.close()


async def _audit(wd: Path, env: dict[str, str]) -> list[tuple[str, str]]:
    svc = Services.open(load_settings(wd / "sealmail.toml", env=env))
    try:
        async with svc.db.session() as s:
            rows = await s.execute(
                select(AuditEvent.actor, AuditEvent.action).where(
                    AuditEvent.action.like("message.%")
                )
            )
            return [tuple(r) for r in rows.all()]  # type: ignore[misc]
    finally:
        await svc.close()


def test_show_revoke_expire(workdir: tuple[Path, dict[str, str]]) -> None:  # noqa: F811
    wd, env = workdir
    asyncio.run(_seed(wd, env))
    cfg = ["--config", str(wd / "sealmail.toml")]

    def run(*args: str):  # noqa: ANN202
        return sm(*cfg, "message", *args, cwd=wd, env=env)

    shown = run("show", "m_cli")
    assert shown.returncode == 0, shown.stderr
    assert "Recipients may reply: sender; forward: yes; 'opened' mail to the sender: yes." in (
        shown.stdout
    )
    assert "bob@x.example: can read it until" in shown.stdout
    assert "bob@x.example was notified." in shown.stdout
    assert "dave@demo.example: delivered by mail (no portal access)." in shown.stdout

    data = json.loads(run("show", "m_cli", "--recipient", "Carol@Y.example", "--json").stdout)
    assert [r["recipient"] for r in data["recipients"]] == ["carol@y.example"]

    r = run("revoke", "m_cli", "--recipient", "bob@x.example")
    assert r.returncode == 0 and "bob@x.example can no longer open message m_cli." in r.stdout
    again = json.loads(run("revoke", "m_cli", "--json").stdout)
    assert again["revoked"] == ["carol@y.example"]  # bob's was revoked already

    before = time.time()
    r = run("expire", "m_cli", "--at", "3h", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["changed"] == ["bob@x.example", "carol@y.example"]
    assert before + 3 * 3600 - 1 <= out["expires_at_epoch"] <= time.time() + 3 * 3600

    now_ended = json.loads(run("expire", "m_cli", "--recipient", "bob@x.example", "--json").stdout)
    assert now_ended["expires_at_epoch"] <= time.time()

    data = json.loads(run("show", "m_cli", "--json").stdout)
    states = {r["recipient"]: r for r in data["recipients"]}
    assert states["bob@x.example"]["state"] == "revoked"
    assert states["bob@x.example"]["revoked_by"] == "cli"
    assert [e["kind"] for e in states["bob@x.example"]["events"]] == [
        "notified",
        "revoked",
        "expiry_changed",
        "expiry_changed",
    ]
    assert ("cli", "message.revoked") in asyncio.run(_audit(wd, env))
    assert ("cli", "message.expiry_changed") in asyncio.run(_audit(wd, env))

    for args, words in (
        (("show", "m_nothing"), "no message"),
        (("revoke", "m_nothing"), "no message"),
        (("revoke", "m_cli", "--recipient", "eve@z.example"), "has no portal access"),
        (("expire", "m_cli", "--at", "yesterday"), "--at"),
        (("expire", "m_cli", "--at", "2001-01-01"), "in the past"),
        (("show", "m_cli", "--recipient", "dave@demo.example"), "has no portal access"),
    ):
        failed = run(*args)
        assert failed.returncode == 1, (args, failed.stdout)
        lines = failed.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0], (args, failed.stderr)


def test_tenant_update_conversation_defaults(workdir: tuple[Path, dict[str, str]]) -> None:  # noqa: F811
    wd, env = workdir
    cfg = ["--config", str(wd / "sealmail.toml")]
    r = sm(
        *cfg, "tenant", "update", "demo", "--receipt-default", "yes", "--reply-default", "sender",
        "--forward-default", "internal", "--sent-users", "listed", "--json", cwd=wd, env=env,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["changed"] == {
        "receipt_default": True,
        "reply_default": "sender",
        "forward_default": "internal",
        "sent_users": "listed",
    }
    again = sm(
        *cfg, "tenant", "update", "demo", "--reply-default", "sender", "--json", cwd=wd, env=env
    )
    assert json.loads(again.stdout)["changed"] == {}
    bad = sm(*cfg, "tenant", "update", "demo", "--forward-default", "maybe", cwd=wd, env=env)
    assert bad.returncode == 2 and "maybe" in bad.stderr
