"""The message page keeps decrypted metadata and text parts in memory
(``core.storage.plain_cache``): what it keeps must never outlive the right to see it. Each
test opens the page once (so its parts are kept), changes the database the way the product
does, and checks the very next page."""

from __future__ import annotations

import time

from sqlalchemy import select, update

from core.hashing import sha256_hex
from core.ids import new_id, new_token
from core.models import Message, PortalAccess, SealedObject
from portal.security import SESSION_COOKIE

from .conftest import World, csrf_of

BOB = "bob@client.example"
CAROL = "carol@client.example"
ALICE = "alice@acme.example"
SECRET = "The vault code is 4711."


def _opened(world: World, **seal: object) -> tuple[str, object]:
    t = world.tenant("Acme", "acme.example")
    sealed = world.seal(t, recipients=[BOB, CAROL], text=f"Hello Bob,\n{SECRET}\n", **seal)
    world.sign_in(sealed.tokens[BOB])
    page = world.client.get(f"/messages/{sealed.message_id}")
    assert page.status_code == 200 and SECRET in page.text
    assert len(world.client.app.state.portal.plain) >= 2  # metadata and text kept
    return t, sealed


def test_revoked_message_is_gone_at_once(world: World) -> None:
    t, sealed = _opened(world)

    async def revoke() -> None:
        from conversations import control

        async with world.services.db.session() as s:
            msg = await control.message_of(s, t, sealed.message_id)
            await control.revoke(s, msg, ALICE, BOB)
            await s.commit()

    world.run(revoke)
    page = world.client.get(f"/messages/{sealed.message_id}")
    assert page.status_code == 410 and "This message was revoked" in page.text
    assert SECRET not in page.text


def test_expired_access_and_portal_copy_are_gone_at_once(world: World) -> None:
    _t, sealed = _opened(world)

    async def expire_access() -> None:
        async with world.services.db.session() as s:
            await s.execute(
                update(PortalAccess)
                .where(PortalAccess.message_id == sealed.message_id)
                .values(expires_at=time.time() - 1)
            )
            await s.commit()

    world.run(expire_access)
    page = world.client.get(f"/messages/{sealed.message_id}")
    assert page.status_code == 410 and SECRET not in page.text


def test_swept_portal_copy_is_gone_at_once(world: World) -> None:
    _t, sealed = _opened(world)

    async def sweep() -> None:
        async with world.services.db.session() as s:
            await s.execute(
                update(Message)
                .where(Message.id == sealed.message_id)
                .values(portal_expired_at=time.time())
            )
            await s.commit()

    world.run(sweep)
    page = world.client.get(f"/messages/{sealed.message_id}")
    assert page.status_code == 410 and SECRET not in page.text


def test_destroyed_key_is_never_served_from_memory(world: World) -> None:
    _t, sealed = _opened(world)

    async def shred() -> None:
        async with world.services.db.session() as s:
            await s.execute(
                update(SealedObject)
                .where(SealedObject.kind == "part")
                .values(wrapped_key=None, destroyed_at=time.time())
            )
            await s.commit()

    world.run(shred)
    page = world.client.get(f"/messages/{sealed.message_id}")
    assert page.status_code == 404 and SECRET not in page.text


def test_signed_out_session_is_refused_at_once(world: World) -> None:
    _t, sealed = _opened(world)
    stolen = world.client.cookies.get(SESSION_COOKIE)
    page = world.client.get("/inbox")
    r = world.client.post("/logout", data={"csrf": csrf_of(page.text)})
    assert r.status_code == 200
    thief = world.new_client()
    thief.cookies.set(SESSION_COOKIE, stolen)
    page = thief.get(f"/messages/{sealed.message_id}")
    assert page.status_code == 401 and SECRET not in page.text


def test_other_reader_and_other_tenant_are_refused(world: World) -> None:
    _t, sealed = _opened(world)
    # a reader of another tenant never sees it, kept or not
    other_tenant = world.tenant("Other", "other.example")
    theirs = world.seal(other_tenant, recipients=["dave@client.example"], text="theirs\n")
    dave = world.new_client()
    world.sign_in(theirs.tokens["dave@client.example"], dave)
    page = dave.get(f"/messages/{sealed.message_id}")
    assert page.status_code == 404 and SECRET not in page.text
    # Carol was sent it too and has her own session; once her access alone is revoked, her
    # page is gone while Bob's, from the same kept parts, still shows
    carol = world.new_client()
    world.sign_in(sealed.tokens[CAROL], carol)
    assert SECRET in carol.get(f"/messages/{sealed.message_id}").text

    async def drop_carol() -> None:
        async with world.services.db.session() as s:
            await s.execute(
                update(PortalAccess)
                .where(PortalAccess.recipient == CAROL)
                .values(revoked=True, revoked_at=time.time())
            )
            await s.commit()

    world.run(drop_carol)
    page = carol.get(f"/messages/{sealed.message_id}")
    assert page.status_code == 410 and SECRET not in page.text
    assert SECRET in world.client.get(f"/messages/{sealed.message_id}").text


def test_a_new_message_of_the_thread_shows_at_once(world: World) -> None:
    t, sealed = _opened(world)
    reply = world.seal(t, recipients=[BOB], text="Second message of the thread\n")

    async def thread() -> None:
        async with world.services.db.session() as s:
            await s.execute(
                update(Message)
                .where(Message.id == reply.message_id)
                .values(
                    thread_id=sealed.message_id,
                    parent_id=sealed.message_id,
                    received_at=time.time() + 5,
                )
            )
            await s.execute(
                update(Message)
                .where(Message.id == sealed.message_id)
                .values(thread_id=sealed.message_id)
            )
            await s.commit()

    world.run(thread)
    page = world.client.get(f"/messages/{sealed.message_id}")
    assert page.status_code == 200
    assert SECRET in page.text and "Second message of the thread" in page.text

    async def views() -> int:
        from core.models import AuditEvent

        await world.client.app.state.portal.views.flush()
        async with world.services.db.session() as s:
            rows = await s.execute(
                select(AuditEvent).where(AuditEvent.action == "portal.message.viewed")
            )
            return len(rows.scalars().all())

    assert world.run(views) == 2  # every view is still audited


def test_plain_cache_is_bounded_keyed_by_tenant_and_short_lived() -> None:
    from core.storage.plain_cache import MAX_OBJECT, PlainCache

    cache = PlainCache(ttl=60.0, max_bytes=10)
    cache.put("t1", "a", b"12345")
    assert cache.derived("t1", "a", b"12345", "n", len) == 5
    cache.put("t1", "b", b"123456")  # over 10 bytes: the oldest goes, with what came of it
    assert cache.get("t1", "a") is None and cache.get("t1", "b") == b"123456"
    assert cache.derived("t1", "a", b"xy", "n", len) == 2  # not kept: made afresh
    assert cache.get("t2", "b") is None  # another tenant's key never matches
    cache.put("t1", "big", b"x" * (MAX_OBJECT + 1))
    assert cache.get("t1", "big") is None
    gone = PlainCache(ttl=0.0)
    gone.put("t1", "a", b"1")
    assert gone.get("t1", "a") is None and len(gone) == 0


def test_one_query_page_keeps_conversations_apart(world: World) -> None:
    """The page finds the conversation from the asked-for message in one statement: a
    message outside any conversation (empty thread id) is its own, never grouped with the
    reader's other such messages, and a reply pointing at it joins it."""
    t, sealed = _opened(world)
    other = world.seal(t, recipients=[BOB], subject="Unrelated", text="Another matter\n")
    page = world.client.get(f"/messages/{sealed.message_id}")
    assert page.status_code == 200 and "Another matter" not in page.text
    page = world.client.get(f"/messages/{other.message_id}")
    assert "Another matter" in page.text and SECRET not in page.text
    reply = world.seal(t, recipients=[ALICE], sender=f"Bob <{BOB}>", text="My answer\n")

    async def thread_reply() -> None:
        async with world.services.db.session() as s:
            await s.execute(
                update(Message)
                .where(Message.id == reply.message_id)
                .values(thread_id=sealed.message_id, received_at=time.time() + 5)
            )
            s.add(
                PortalAccess(
                    id=new_id("a_"),
                    token_hash=sha256_hex(new_token(32)),
                    message_id=reply.message_id,
                    tenant_id=t,
                    recipient=BOB,
                    expires_at=time.time() + 86400,
                    kind="author",
                )
            )
            await s.commit()

    world.run(thread_reply)
    page = world.client.get(f"/messages/{sealed.message_id}")
    assert "This conversation has 2 messages" in page.text and "My answer" in page.text
    assert "Another matter" not in page.text
