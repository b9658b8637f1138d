"""The recipient's space (issue 12): the conversation view across recipients, the inbox by
conversation, .eml and PDF downloads, revoked and expired pages with "ask for a new copy",
and the opened / downloaded events with the single "opened" receipt (both databases)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
import io
import os
import time

from sqlalchemy import select, update

from conversations.models import MessageEvent
from core.hashing import sha256_hex
from core.ids import new_id, new_token
from core.models import Message, OutboxItem, PortalAccess

from .conftest import World, csrf_of

BOB = "bob@client.example"
CAROL = "carol@other.example"
ALICE = "alice@acme.example"


def _thread(world: World, first: str, *others: str) -> None:
    async def run() -> None:
        async with world.services.db.session() as s:
            for n, mid in enumerate(others, 1):
                await s.execute(
                    update(Message)
                    .where(Message.id == mid)
                    .values(thread_id=first, parent_id=first, received_at=time.time() + n)
                )
            await s.execute(update(Message).where(Message.id == first).values(thread_id=first))
            await s.commit()

    world.run(run)


def _author_copy(world: World, tenant: str, message_id: str, author: str) -> None:
    async def run() -> None:
        async with world.services.db.session() as s:
            s.add(
                PortalAccess(
                    id=new_id("a_"),
                    token_hash=sha256_hex(new_token(32)),
                    message_id=message_id,
                    tenant_id=tenant,
                    recipient=author,
                    expires_at=time.time() + 86400,
                    kind="author",
                )
            )
            await s.commit()

    world.run(run)


def _mails(world: World, kind: str = "sender") -> list[email.message.EmailMessage]:
    async def run() -> list[email.message.EmailMessage]:
        async with world.services.db.session() as s:
            rows = (
                (await s.execute(select(OutboxItem).where(OutboxItem.kind == kind))).scalars().all()
            )
            out = []
            for item in rows:
                assert item.tenant_id is not None
                data = await world.services.vault.read(s, item.tenant_id, item.object_id)
                out.append(email.message_from_bytes(data, policy=email.policy.default))
            return out

    return world.run(run)


def _events(world: World, message_id: str) -> list[tuple[str, str]]:
    async def run() -> list[tuple[str, str]]:
        async with world.services.db.session() as s:
            rows = await s.execute(
                select(MessageEvent.kind, MessageEvent.recipient)
                .where(MessageEvent.message_id == message_id)
                .order_by(MessageEvent.id)
            )
            return [(k, r) for k, r in rows.all()]

    return world.run(run)


def test_thread_shows_only_what_each_recipient_may_open(world: World) -> None:
    t = world.tenant("Acme", "acme.example", display_name="Acme Bank")
    first = world.seal(t, recipients=[BOB, CAROL], subject="Contract draft")
    bob_reply = world.seal(
        t,
        recipients=[ALICE],
        subject="Re: Contract draft",
        sender=f"Bob Client <{BOB}>",
        text="Bob's own answer\n",
    )
    _author_copy(world, t, bob_reply.message_id, BOB)
    for_carol = world.seal(
        t, recipients=[CAROL], subject="Re: Contract draft", text="Only for Carol\n"
    )
    _thread(world, first.message_id, bob_reply.message_id, for_carol.message_id)

    world.sign_in(first.tokens[BOB])
    page = world.client.get(f"/messages/{first.message_id}")
    assert page.status_code == 200
    assert "This conversation has 2 messages" in page.text
    assert (
        "Alice Sender sent this on 4 March 2025 at 10:15 UTC to you and carol@other.example."
        in page.text
    )
    assert "You sent this" in page.text and "Bob&#39;s own answer" in page.text
    assert "Only for Carol" not in page.text
    assert page.text.index("Hello Bob") < page.text.index("Bob&#39;s own answer")  # oldest first
    assert f'id="m-{first.message_id}"' in page.text
    # the reply's page is the same conversation, the reply marked
    again = world.client.get(f"/messages/{bob_reply.message_id}")
    assert again.status_code == 200 and "The message you opened" in again.text

    carol = world.new_client()
    world.sign_in(first.tokens[CAROL], carol)
    seen = carol.get(f"/messages/{first.message_id}")
    assert "Only for Carol" in seen.text and "Bob&#39;s own answer" not in seen.text
    assert carol.get(f"/messages/{bob_reply.message_id}").status_code == 404
    assert carol.get(f"/messages/{bob_reply.message_id}/download.eml").status_code == 404


def test_modes_decide_the_reply_and_forward_buttons(world: World) -> None:
    t = world.tenant("Acme", "acme.example", reply_default="sender", forward_default="no")
    sealed = world.seal(t, recipients=[BOB, CAROL])
    world.sign_in(sealed.tokens[BOB])
    page = world.client.get(f"/messages/{sealed.message_id}").text
    assert f'href="/messages/{sealed.message_id}/reply"' in page
    assert "reply?all=1" not in page and "/forward" not in page

    async def allow_all() -> None:
        async with world.services.db.session() as s:
            await s.execute(
                update(Message)
                .where(Message.id == sealed.message_id)
                .values(reply_mode="all", forward_mode="internal")
            )
            await s.commit()

    world.run(allow_all)
    page = world.client.get(f"/messages/{sealed.message_id}?notice=replied").text
    assert "reply?all=1" in page and f"/messages/{sealed.message_id}/forward" in page
    assert "Your reply was sent securely." in page


def test_inbox_groups_conversations_and_marks_unread(world: World) -> None:
    t = world.tenant("Acme", "acme.example")
    first = world.seal(t, recipients=[BOB], subject="Loan papers")
    second = world.seal(t, recipients=[BOB], subject="Re: Loan papers")
    other = world.seal(t, recipients=[BOB], subject="Card statement")
    _thread(world, first.message_id, second.message_id)
    world.sign_in(other.tokens[BOB])
    inbox = world.client.get("/inbox").text
    assert "2 conversations" in inbox and "2 messages" in inbox
    assert inbox.count('class="unread"') == 1  # Loan papers: not opened yet
    assert inbox.index("Loan papers") < inbox.index("Card statement")  # newest activity first
    assert f'href="/messages/{second.message_id}#m-{second.message_id}"' in inbox
    world.client.get(f"/messages/{first.message_id}")  # reading the thread opens both
    assert 'class="unread"' not in world.client.get("/inbox").text


def test_eml_and_pdf_downloads(world: World) -> None:
    import pypdf

    t = world.tenant("Acme", "acme.example")
    data = bytes(range(256)) * 50
    first = world.seal(
        t,
        recipients=[BOB],
        subject="Signed contract",
        html="<p>Formatted</p>",
        attachments=[
            ("contract.pdf", "application/pdf", data),
            ("notes.csv", "text/csv", b"a,b\r\n1,2"),
        ],
    )
    reply = world.seal(t, recipients=[BOB], subject="Re: Signed contract", text="Thanks!\n")
    _thread(world, first.message_id, reply.message_id)
    world.sign_in(first.tokens[BOB])

    r = world.client.get(f"/messages/{first.message_id}/download.eml")
    assert r.status_code == 200 and r.headers["content-type"].startswith("message/rfc822")
    assert r.headers["content-disposition"].startswith('attachment; filename="Signed contract.eml"')
    assert "sandbox" in r.headers["content-security-policy"]
    msg = email.message_from_bytes(r.content, policy=email.policy.default)
    assert (
        msg["Subject"] == "Signed contract" and msg["From"] == "Alice Sender <alice@acme.example>"
    )
    assert msg["To"] == BOB and msg["Message-ID"].endswith("@acme.example>")
    assert not [k for k in msg.keys() if k.lower().startswith(("x-sealmail", "received"))]
    files = {a.get_filename(): a.get_payload(decode=True) for a in msg.iter_attachments()}
    assert files == {"contract.pdf": data, "notes.csv": b"a,b\r\n1,2"}
    assert "the figures are attached." in msg.get_body(("plain",)).get_content()
    assert "Formatted" in msg.get_body(("html",)).get_content()

    digest = world.client.get(f"/messages/{first.message_id}/thread.eml")
    whole = email.message_from_bytes(digest.content, policy=email.policy.default)
    assert whole.get_content_type() == "multipart/digest"
    inner = [p.get_content() for p in whole.iter_parts()]
    assert [m["Subject"] for m in inner] == ["Signed contract", "Re: Signed contract"]

    pdf = world.client.get(f"/messages/{first.message_id}/download.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf.content)).pages)
    assert "Signed contract" in text and "contract.pdf" in text
    assert hashlib.sha256(data).hexdigest() in text.replace("\n", "")
    both = world.client.get(f"/messages/{first.message_id}/thread.pdf")
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(both.content)).pages)
    assert "Thanks!" in text and "Signed contract" in text

    kinds = [k for k, _r in _events(world, first.message_id)]
    assert kinds.count("downloaded") == 1 and kinds.count("opened") == 1


def test_revoked_page_and_ask_for_a_copy_once_a_day(world: World) -> None:
    t = world.tenant("Acme", "acme.example", display_name="Acme Bank")
    sealed = world.seal(t, recipients=[BOB], subject="Wrong person")
    token = sealed.tokens[BOB]

    async def revoke() -> None:
        from conversations import control

        async with world.services.db.session() as s:
            msg = await control.message_of(s, t, sealed.message_id)
            await control.revoke(s, msg, ALICE, BOB)
            await s.commit()

    world.run(revoke)
    page = world.open_link(token)
    csrf = csrf_of(page.text)
    assert page.status_code == 410
    assert "This message was revoked" in page.text
    assert "Alice Sender &lt;alice@acme.example&gt; revoked this message on" in page.text
    r = world.client.post(f"/m/{token}/ask", data={"csrf": csrf_of(page.text)})
    assert r.status_code == 200, r.text
    assert "We told Alice Sender you would like a new copy." in r.text
    mails = _mails(world)
    assert len(mails) == 1 and mails[0]["To"] == ALICE
    body = mails[0].get_body(("plain",)).get_content()
    assert f"{BOB} asked for a new copy of your message 'Wrong person'" in body
    assert f"/sent/{sealed.message_id}" in body
    # again, within the day: no second mail, and the page says so
    page = world.open_link(token)
    assert "You asked Alice Sender for a new copy on" in page.text
    r = world.client.post(f"/m/{token}/ask", data={"csrf": csrf})  # a second tab's form
    assert "You already asked" in r.text and len(_mails(world)) == 1
    assert [k for k, _r in _events(world, sealed.message_id)].count("copy_requested") == 1
    # a forged form is refused
    assert world.client.post(f"/m/{token}/ask", data={"csrf": "x"}).status_code == 403


def test_revoke_reaches_an_open_session_and_expired_says_when(world: World) -> None:
    t = world.tenant("Acme", "acme.example")
    sealed = world.seal(t, recipients=[BOB], subject="Soon gone")
    world.sign_in(sealed.tokens[BOB])
    assert world.client.get(f"/messages/{sealed.message_id}").status_code == 200

    async def expire() -> None:
        async with world.services.db.session() as s:
            await s.execute(update(PortalAccess).values(expires_at=time.time() - 5))
            await s.commit()

    world.run(expire)
    page = world.client.get(f"/messages/{sealed.message_id}")
    assert page.status_code == 410 and "This message has expired" in page.text
    assert "This message expired on" in page.text and "Soon gone" in page.text
    r = world.client.post(f"/messages/{sealed.message_id}/ask", data={"csrf": csrf_of(page.text)})
    assert "We told Alice Sender" in r.text and len(_mails(world)) == 1
    assert (
        world.client.post(f"/messages/{sealed.message_id}/ask", data={"csrf": "forged"}).status_code
        == 403
    )
    assert "Soon gone" not in world.client.get("/inbox").text


def test_receipt_exactly_once_even_when_openings_race(world: World) -> None:
    from portal.reader.receipts import mark_opened

    t = world.tenant("Acme", "acme.example")
    sealed = world.seal(t, recipients=[BOB, CAROL], subject="Please confirm")

    async def setup() -> list[str]:
        async with world.services.db.session() as s:
            await s.execute(
                update(Message).where(Message.id == sealed.message_id).values(receipt=True)
            )
            await s.commit()
            rows = await s.execute(
                select(PortalAccess.id).where(PortalAccess.message_id == sealed.message_id)
            )
            return list(rows.scalars().all())

    ids = world.run(setup)
    state = world.client.app.state.portal  # type: ignore[attr-defined]

    async def race() -> list[bool]:
        return list(await asyncio.gather(*(mark_opened(state, i) for i in ids * 3)))

    outcomes = world.run(race)
    assert outcomes.count(True) == 2  # each access's first opening, once
    mails = _mails(world)
    assert len(mails) == 1 and mails[0]["To"] == ALICE
    assert (
        "opened your secure message 'Please confirm' on"
        in mails[0].get_body(("plain",)).get_content()
    )
    world.sign_in(sealed.tokens[BOB])  # a verified opening later: still one receipt
    world.client.get(f"/messages/{sealed.message_id}")
    assert len(_mails(world)) == 1
    kinds = [k for k, _r in _events(world, sealed.message_id)]
    assert kinds.count("opened") == 2 and kinds.count("receipt_sent") == 1


def test_eml_streams_a_large_attachment_byte_for_byte(world: World) -> None:
    """An attachment above 1 MiB is streamed from its sealed object into the email file
    (the response has no length: it is never held whole), in the message and the thread."""
    t = world.tenant("Acme", "acme.example")
    big, small = os.urandom(3 * 1024 * 1024 + 7), b"a,b\r\n1,2"
    sealed = world.seal(
        t,
        recipients=[BOB],
        subject="Plans",
        attachments=[("plans.bin", "application/octet-stream", big), ("n.csv", "text/csv", small)],
    )
    world.sign_in(sealed.tokens[BOB])
    for path in ("download.eml", "thread.eml"):
        r = world.client.get(f"/messages/{sealed.message_id}/{path}")
        assert r.status_code == 200 and "content-length" not in r.headers
        msg = email.message_from_bytes(r.content, policy=email.policy.default)
        if path == "thread.eml":
            (msg,) = [p.get_content() for p in msg.iter_parts()]
        files = {a.get_filename(): a.get_payload(decode=True) for a in msg.iter_attachments()}
        assert files == {"plans.bin": big, "n.csv": small}
        assert max(map(len, r.content.split(b"\r\n"))) <= 998


def test_first_opening_and_first_download_are_events(world: World) -> None:
    t = world.tenant("Acme", "acme.example")
    sealed = world.seal(t, recipients=[BOB], attachments=[("a.txt", "text/plain", b"x")])
    world.sign_in(sealed.tokens[BOB])
    assert _events(world, sealed.message_id) == [("opened", BOB)]
    assert _mails(world) == []  # no receipt asked for
    for _ in range(2):
        assert world.client.get(f"/messages/{sealed.message_id}/attachments/0").content == b"x"
    assert _events(world, sealed.message_id) == [("opened", BOB), ("downloaded", BOB)]


def test_other_tenant_sees_nothing(world: World) -> None:
    acme = world.tenant("Acme", "acme.example")
    beta = world.tenant("Beta", "beta.example")
    mine = world.seal(beta, recipients=[BOB], subject="Beta secret")
    theirs = world.seal(acme, recipients=[BOB], subject="Acme letter")
    _thread(world, theirs.message_id, mine.message_id)  # even a forged thread id
    world.sign_in(theirs.tokens[BOB])
    page = world.client.get(f"/messages/{theirs.message_id}")
    assert "Beta secret" not in page.text
    for path in ("", "/download.eml", "/thread.pdf", "/ask"):
        assert world.client.get(f"/messages/{mine.message_id}{path}").status_code in (404, 405)
    assert "Beta secret" not in world.client.get("/inbox").text
    assert "Beta secret" not in world.client.get(f"/messages/{theirs.message_id}/thread.eml").text


def test_landing_page(world: World) -> None:
    r = world.client.get("/")
    assert r.status_code == 200
    assert "secure-message portal" in r.text and "never ask for a password" in r.text
    assert "testserver" in r.text or world.settings.portal_base_url in r.text


def test_eml_keeps_inline_images_beside_the_html(world: World) -> None:
    import dataclasses

    from core.portal_message import PortalMessage

    t = world.tenant("Acme", "acme.example")
    logo = b"\x89PNG\r\n\x1a\n" + bytes(range(200))
    sealed = world.seal(
        t,
        recipients=[BOB],
        html='<p>Our logo: <img src="cid:logo1@acme"></p>',
        attachments=[("logo.png", "image/png", logo), ("terms.pdf", "application/pdf", b"%PDF")],
    )

    async def mark_inline() -> None:  # as the pipeline stores a cid: image
        async with world.services.db.session() as s:
            msg = await s.get(Message, sealed.message_id)
            assert msg is not None and msg.meta_object_id is not None
            vault = world.services.vault
            pm = PortalMessage.from_json(await vault.read(s, t, msg.meta_object_id))
            image = dataclasses.replace(pm.attachments[0], inline=True, content_id="logo1@acme")
            pm = dataclasses.replace(pm, attachments=(image, pm.attachments[1]))
            msg.meta_object_id = (await vault.seal(s, t, pm.to_json(), "meta")).id
            await s.commit()

    world.run(mark_inline)
    world.sign_in(sealed.tokens[BOB])
    r = world.client.get(f"/messages/{sealed.message_id}/download.eml")
    msg = email.message_from_bytes(r.content, policy=email.policy.default)
    related = [p for p in msg.walk() if p.get_content_type() == "multipart/related"]
    assert len(related) == 1
    image = [p for p in related[0].iter_parts() if p["Content-ID"] == "<logo1@acme>"]
    assert image and image[0].get_payload(decode=True) == logo
    assert {a.get_filename() for a in msg.iter_attachments()} == {"terms.pdf"}
