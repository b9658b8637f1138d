"""A worker killed on this host: its claims are given back when a worker starts; claims of
live processes and of other hosts are left alone."""

from __future__ import annotations

import subprocess
import sys

from sqlalchemy import select

from core import leases, outbox
from core.ids import queue_id
from core.models import Message, OutboxRecipient, now
from core.services import Services
from tests.portal.conftest import make_tenant


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


async def test_dead_local_claims_are_released(services: Services) -> None:
    tid = await make_tenant(services, "Acme", "acme.example")
    host = leases._host()
    dead = f"{host}:{_dead_pid()}:abc"
    alive = leases.owner_id()
    remote = f"other-host:{_dead_pid()}:abc"
    async with services.db.session() as s:
        for owner in (dead, alive, remote):
            item = await outbox.enqueue(
                s, kind="clear", tenant_id=tid, mail_from="a@acme.example",
                recipients=[f"{owner[-3:]}@x.test"], object_id="o", lifetime=60,
            )  # fmt: skip
            await s.flush()
            row = (
                await s.execute(select(OutboxRecipient).where(OutboxRecipient.outbox_id == item.id))
            ).scalar_one()
            row.lease_owner, row.lease_until = owner, now() + 300
            s.add(
                Message(
                    id=queue_id(), tenant_id=tid, mail_from="a@acme.example", raw_object_id="r",
                    state="received", next_attempt_at=now() + 600, claimed_by=owner,
                )
            )  # fmt: skip
        await s.commit()
    assert leases.is_dead_local(dead) and not leases.is_dead_local(alive)
    assert not leases.is_dead_local(remote)
    async with services.db.session() as s:
        assert await leases.release_dead(s) == (1, 1)
        await s.commit()
    async with services.db.session() as s:
        owners = (await s.execute(select(OutboxRecipient.lease_owner))).scalars().all()
        claims = (await s.execute(select(Message.claimed_by, Message.next_attempt_at))).all()
    assert sorted(o or "" for o in owners) == sorted(["", alive, remote])
    assert sorted(c for c, _ in claims) == sorted(["", alive, remote])
    assert all(t <= now() for c, t in claims if c == "")
