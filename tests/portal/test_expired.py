"""A portal message past its portal retention: the sweep shreds its portal copy and the
recipient sees a readable "this message has expired" page, not an error (both databases)."""

from __future__ import annotations

import time

from sqlalchemy import update

from archive.sweep import sweep
from core.models import Message, Tenant

from .conftest import World

BOB = "bob@client.example"


async def _age(world: World, message_id: str, tenant_id: str, days: float) -> None:
    async with world.services.db.session() as s:
        await s.execute(
            update(Message)
            .where(Message.id == message_id)
            .values(received_at=time.time() - days * 86400)
        )
        await s.execute(
            update(Tenant).where(Tenant.id == tenant_id).values(portal_retention_days=7)
        )
        await s.commit()


def test_expired_message_page(world: World) -> None:
    t = world.tenant("Acme", "acme.example", display_name="Acme Bank")
    old = world.seal(t, recipients=[BOB], subject="Old statement")
    new = world.seal(t, recipients=[BOB], subject="New statement")
    world.sign_in(old.tokens[BOB])
    page = world.client.get(f"/messages/{old.message_id}")
    assert page.status_code == 200 and "Old statement" in page.text

    world.run(_age, world, old.message_id, t, 8)  # the tenant keeps portal copies 7 days
    report = world.run(sweep, world.services)
    assert report.portal_expired == 1 and report.problems == []

    page = world.client.get(f"/messages/{old.message_id}")
    assert page.status_code == 410
    assert "This message has expired" in page.text and "Old statement" not in page.text
    inbox = world.client.get("/inbox")
    assert inbox.status_code == 200
    assert "New statement" in inbox.text and "Old statement" not in inbox.text
    assert world.client.get(f"/messages/{new.message_id}").status_code == 200

    other = world.new_client()
    link = world.open_link(old.tokens[BOB], other)
    assert link.status_code == 410
    assert "This message has expired" in link.text and "Acme Bank" in link.text
    assert world.open_link("not-a-real-token", other).status_code == 404
