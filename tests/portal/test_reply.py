"""Secure reply, reply-all and forward from the portal, seen from outside: the pages, the
stored message (read back through the vault and parsed), its envelope recipients, the events
and audit rows; on SQLite and PostgreSQL."""

from __future__ import annotations

import email
import email.policy
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from conversations.models import MessageEvent
from core.config.settings import Settings
from core.models import AuditEvent, Message, MessageRecipient, PortalAccess, now
from core.portal_message import PortalMessage
from portal.models import RateEvent

from ..conftest import make_settings
from .conftest import World, csrf_of

BOB = "bob@client.example"
CAROL = "Carol Jones <carol@other.example>"
MAX = 1024 * 1024  # smtp_max_message_size for these tests: the limits are reachable


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return make_settings(tmp_path, db_url, smtp_max_message_size=MAX)


def _setup(world: World, **message_fields: Any) -> tuple[str, Any]:
    tenant = world.tenant("Acme", "acme.example", display_name="Acme Bank")
    sealed = world.seal(
        tenant,
        recipients=[BOB, CAROL],
        sender="Alice Smith <alice@acme.example>",
        attachments=[("figures.pdf", "application/pdf", b"%PDF-1.4 figures\n" * 100)],
    )
    if message_fields:
        world.run(_update_message, world, sealed.message_id, message_fields)
    world.sign_in(sealed.tokens[BOB])
    return tenant, sealed


async def _update_message(world: World, message_id: str, fields: dict[str, Any]) -> None:
    async with world.services.db.session() as s:
        await s.execute(update(Message).where(Message.id == message_id).values(**fields))
        await s.commit()


async def _answers(world: World, parent_id: str) -> list[dict[str, Any]]:
    """Every message written in the portal in answer to ``parent_id``, its raw parsed."""
    out = []
    async with world.services.db.session() as s:
        rows = (
            (await s.execute(select(Message).where(Message.parent_id == parent_id))).scalars().all()
        )
        for msg in rows:
            raw = await world.services.vault.read(s, msg.tenant_id, msg.raw_object_id)
            rcpts = (
                (
                    await s.execute(
                        select(MessageRecipient.rcpt).where(MessageRecipient.message_id == msg.id)
                    )
                )
                .scalars()
                .all()
            )
            out.append(
                {
                    "row": msg,
                    "mail": email.message_from_bytes(raw, policy=email.policy.default),
                    "rcpts": sorted(rcpts),
                }
            )
    return out


async def _meta(world: World, tenant: str, message_id: str) -> PortalMessage:
    async with world.services.db.session() as s:
        msg = await s.get(Message, message_id)
        assert msg is not None and msg.meta_object_id
        return PortalMessage.from_json(
            await world.services.vault.read(s, tenant, msg.meta_object_id)
        )


async def _rows(world: World, model: Any, *where: Any) -> list[Any]:
    async with world.services.db.session() as s:
        return list((await s.execute(select(model).where(*where))).scalars().all())


def _post(world: World, message_id: str, path: str = "reply", files=(), **data: str):
    page = world.client.get(
        f"/messages/{message_id}/{path}" + ("?all=1" if data.get("all") == "1" else "")
    )
    assert page.status_code == 200, page.text
    form = {"csrf": csrf_of(page.text), **data}
    return world.client.post(
        f"/messages/{message_id}/{path}", data=form, files=list(files), follow_redirects=False
    )


def test_reply_goes_to_the_sender_threaded_with_the_attachment(world: World) -> None:
    tenant, sealed = _setup(world)
    page = world.client.get(f"/messages/{sealed.message_id}/reply")
    assert page.status_code == 200
    assert 'Your reply goes to <strong class="addr">Alice Smith &lt;alice@acme.example&gt;' in (
        page.text
    )
    assert "Re: Quarterly figures" in page.text
    assert "<details" in page.text and "&gt; Hello Bob," in page.text

    data = os.urandom(300_000)
    r = _post(
        world,
        sealed.message_id,
        text="Thanks Alice,\nsigned copy attached.",
        files=[("attachments", ("signed.bin", data, "application/octet-stream"))],
    )
    assert r.status_code == 303
    assert r.headers["location"] == f"/messages/{sealed.message_id}?notice=replied"

    (answer,) = world.run(_answers, world, sealed.message_id)
    row, mail = answer["row"], answer["mail"]
    assert (row.origin, row.state, row.mail_from) == ("reply", "received", BOB)
    assert row.thread_id == sealed.message_id
    assert answer["rcpts"] == ["alice@acme.example"]
    assert mail["To"] == "Alice Smith <alice@acme.example>" and mail["Cc"] is None
    assert mail["From"] == BOB
    assert mail["Subject"] == "Re: Quarterly figures"
    parent = world.run(_meta, world, tenant, sealed.message_id)
    assert mail["In-Reply-To"] == parent.message_id_header
    assert mail["References"] == parent.message_id_header
    body = mail.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert body.startswith("Thanks Alice,\nsigned copy attached.\n\nOn Tue, 04 Mar 2025 at 10:15")
    assert "Alice Smith <alice@acme.example> wrote:\n> Hello Bob,\n> the figures" in body
    (att,) = list(mail.iter_attachments())
    assert att.get_filename() == "signed.bin"
    assert hashlib.sha256(att.get_content()).hexdigest() == hashlib.sha256(data).hexdigest()

    (event,) = world.run(
        _rows,
        world,
        MessageEvent,
        MessageEvent.message_id == sealed.message_id,
        MessageEvent.kind == "replied",
    )
    assert (event.recipient, event.actor) == (BOB, BOB)
    (access,) = world.run(
        _rows,
        world,
        PortalAccess,
        PortalAccess.message_id == sealed.message_id,
        PortalAccess.recipient == BOB,
    )
    assert access.replied_at is not None
    audits = world.run(_rows, world, AuditEvent, AuditEvent.action == "portal.reply.sent")
    assert [a.subject_id for a in audits] == [sealed.message_id]


def test_reply_all_copies_the_other_recipients_never_the_author(world: World) -> None:
    _tenant, sealed = _setup(world)
    page = world.client.get(f"/messages/{sealed.message_id}/reply?all=1")
    assert "Alice Smith &lt;alice@acme.example&gt; and 1 other: Carol Jones" in page.text
    assert BOB not in page.text.split("Your reply goes to")[1].split("</strong>")[0]
    r = _post(world, sealed.message_id, text="Noted, all.", all="1")
    assert r.status_code == 303
    (answer,) = world.run(_answers, world, sealed.message_id)
    assert answer["rcpts"] == ["alice@acme.example", "carol@other.example"]
    assert answer["mail"]["To"] == "Alice Smith <alice@acme.example>"
    assert answer["mail"]["Cc"] == "Carol Jones <carol@other.example>"


def test_references_carry_the_parents_chain(world: World) -> None:
    tenant, sealed = _setup(world)

    async def reseal_raw() -> None:
        async with world.services.db.session() as s:
            raw = (
                b"From: Alice <alice@acme.example>\r\nMessage-ID: <p@acme.example>\r\n"
                b"In-Reply-To: <b@client.example>\r\n"
                b"References: <a@acme.example>\r\n <b@client.example>\r\n\r\nbody\r\n"
            )
            obj = await world.services.vault.seal(s, tenant, raw, "raw")
            await s.execute(
                update(Message).where(Message.id == sealed.message_id).values(raw_object_id=obj.id)
            )
            await s.commit()

    world.run(reseal_raw)
    assert _post(world, sealed.message_id, text="Fine.").status_code == 303
    (answer,) = world.run(_answers, world, sealed.message_id)
    parent = world.run(_meta, world, tenant, sealed.message_id).message_id_header
    # folded after the colon when long, as the email package does: unfolded, the same value
    assert answer["mail"]["References"].split() == [
        "<a@acme.example>",
        "<b@client.example>",
        parent,
    ]


@pytest.mark.parametrize(
    ("mode", "reply", "reply_all"), [("none", 403, 403), ("sender", 200, 403), ("all", 200, 200)]
)
def test_reply_modes(world: World, mode: str, reply: int, reply_all: int) -> None:
    _tenant, sealed = _setup(world, reply_mode=mode)
    one = world.client.get(f"/messages/{sealed.message_id}/reply")
    everyone = world.client.get(f"/messages/{sealed.message_id}/reply?all=1")
    assert (one.status_code, everyone.status_code) == (reply, reply_all)
    if mode == "none":
        assert "Replies are turned off" in one.text and "Alice Smith turned replies off" in one.text
    if mode == "sender":
        assert "Reply all is turned off" in everyone.text
        page = world.client.get(f"/messages/{sealed.message_id}/reply")
        r = world.client.post(
            f"/messages/{sealed.message_id}/reply",
            data={"csrf": csrf_of(page.text), "text": "To all?", "all": "1"},
            follow_redirects=False,
        )
        assert r.status_code == 403
        assert world.run(_answers, world, sealed.message_id) == []


def test_the_tenant_default_applies_when_the_message_has_none(world: World) -> None:
    tenant = world.tenant("Strict", "strict.example", reply_default="none", forward_default="no")
    sealed = world.seal(tenant, recipients=[BOB], sender="Ann <ann@strict.example>")
    world.sign_in(sealed.tokens[BOB])
    assert world.client.get(f"/messages/{sealed.message_id}/reply").status_code == 403
    assert world.client.get(f"/messages/{sealed.message_id}/forward").status_code == 403
    world.run(_update_message, world, sealed.message_id, {"reply_mode": "sender"})
    assert world.client.get(f"/messages/{sealed.message_id}/reply").status_code == 200


def test_an_empty_reply_shows_the_form_again(world: World) -> None:
    _tenant, sealed = _setup(world)
    r = _post(world, sealed.message_id, text="   ")
    assert r.status_code == 400
    assert "Write a reply or attach a file" in r.text and "<textarea" in r.text
    assert world.run(_answers, world, sealed.message_id) == []


def test_a_reply_without_the_session_token_is_refused(world: World) -> None:
    _tenant, sealed = _setup(world)
    for csrf in ("", "forged"):
        r = world.client.post(
            f"/messages/{sealed.message_id}/reply",
            data={"csrf": csrf, "text": "hi"},
            follow_redirects=False,
        )
        assert r.status_code == 403
    r = world.client.post(
        f"/messages/{sealed.message_id}/reply",
        data={"text": "hi"},
        headers={"Sec-Fetch-Site": "cross-site"},
        follow_redirects=False,
    )
    assert r.status_code == 403
    assert world.run(_answers, world, sealed.message_id) == []


def test_oversize_requests_get_a_readable_413(world: World) -> None:
    _tenant, sealed = _setup(world)
    page = world.client.get(f"/messages/{sealed.message_id}/reply")
    big = os.urandom(MAX + 1024 * 1024 + 10)
    r = world.client.post(
        f"/messages/{sealed.message_id}/reply",
        data={"csrf": csrf_of(page.text), "text": "big"},
        files=[("attachments", ("big.bin", big, "application/octet-stream"))],
    )
    assert r.status_code == 413
    assert "Your files are too large to send" in r.text
    # under the request bound, but over the message size once encoded: the form, again
    r = _post(
        world,
        sealed.message_id,
        text="keep me",
        files=[("attachments", ("a.bin", os.urandom(MAX * 9 // 10), "application/pdf"))],
    )
    assert r.status_code == 413
    assert "too large to send" in r.text and "keep me</textarea>" in r.text
    assert world.run(_answers, world, sealed.message_id) == []


def test_another_tenants_or_recipients_message_is_not_found(world: World) -> None:
    _tenant, sealed = _setup(world)
    other = world.tenant("Other", "other-bank.example")
    theirs = world.seal(other, recipients=[BOB], sender="Olga <olga@other-bank.example>")
    not_mine = world.seal(_tenant, recipients=["dave@client.example"])
    for message_id in (theirs.message_id, not_mine.message_id, "nope"):
        for path in ("reply", "reply?all=1", "forward"):
            assert world.client.get(f"/messages/{message_id}/{path}").status_code == 404
        page = world.client.get(f"/messages/{sealed.message_id}/reply")
        r = world.client.post(
            f"/messages/{message_id}/reply",
            data={"csrf": csrf_of(page.text), "text": "hi"},
            follow_redirects=False,
        )
        assert r.status_code == 404
    assert world.run(_answers, world, theirs.message_id) == []
    # not signed in at all
    anonymous = world.new_client()
    assert anonymous.get(f"/messages/{sealed.message_id}/reply").status_code == 401


def test_replies_are_rate_limited_per_address(world: World) -> None:
    tenant, sealed = _setup(world)

    async def fill() -> None:
        async with world.services.db.session() as s:
            t = now()
            bucket = f"reader-send:a:{tenant}:{BOB}"
            s.add_all([RateEvent(bucket=bucket, at=t - i) for i in range(60)])
            await s.commit()

    world.run(fill)
    r = _post(world, sealed.message_id, text="one more")
    assert r.status_code == 429
    assert "sent many messages in the last hour" in r.text
    assert world.run(_answers, world, sealed.message_id) == []


def test_forward_re_attaches_the_original_files(world: World) -> None:
    _tenant, sealed = _setup(world)
    page = world.client.get(f"/messages/{sealed.message_id}/forward")
    assert page.status_code == 200 and "figures.pdf" in page.text
    r = _post(
        world,
        sealed.message_id,
        "forward",
        to="dan@partner.example, <erin@partner.example>",
        text="For your files.",
    )
    assert r.status_code == 303
    assert r.headers["location"] == f"/messages/{sealed.message_id}?notice=forwarded"
    (answer,) = world.run(_answers, world, sealed.message_id)
    mail = answer["mail"]
    assert answer["row"].origin == "forward"
    assert answer["rcpts"] == ["dan@partner.example", "erin@partner.example"]
    assert mail["Subject"] == "Fwd: Quarterly figures"
    body = mail.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert body.startswith("For your files.\n\n---------- Forwarded message ----------\n")
    assert "From: Alice Smith <alice@acme.example>" in body and "Hello Bob," in body
    (att,) = list(mail.iter_attachments())
    assert att.get_filename() == "figures.pdf"
    assert att.get_content() == sealed.attachments[0]
    kinds = [
        e.kind
        for e in world.run(_rows, world, MessageEvent, MessageEvent.message_id == sealed.message_id)
    ]
    assert kinds.count("forwarded") == 1 and set(kinds) <= {"opened", "forwarded"}


def test_forward_modes_and_bad_addresses(world: World) -> None:
    _tenant, sealed = _setup(world, forward_mode="internal")
    page = world.client.get(f"/messages/{sealed.message_id}/forward")
    assert "only to addresses at acme.example" in page.text
    r = _post(world, sealed.message_id, "forward", to="zed@outside.example alice2@acme.example")
    assert r.status_code == 400
    assert "cannot go to zed@outside.example" in r.text
    assert 'value="zed@outside.example alice2@acme.example"' in r.text
    r = _post(world, sealed.message_id, "forward", to="not-an-address, x@y.example")
    assert r.status_code == 400 and "not email addresses: not-an-address" in r.text
    many = " ".join(f"p{i}@acme.example" for i in range(21))
    assert _post(world, sealed.message_id, "forward", to=many).status_code == 400
    assert world.run(_answers, world, sealed.message_id) == []
    r = _post(world, sealed.message_id, "forward", to="alice2@acme.example")
    assert r.status_code == 303
    world.run(_update_message, world, sealed.message_id, {"forward_mode": "no"})
    page = world.client.get(f"/messages/{sealed.message_id}/forward")
    assert page.status_code == 403 and "Forwarding is turned off" in page.text
    csrf = csrf_of(world.client.get(f"/messages/{sealed.message_id}/reply").text)
    r = world.client.post(
        f"/messages/{sealed.message_id}/forward",
        data={"csrf": csrf, "to": "alice2@acme.example"},
        follow_redirects=False,
    )
    assert r.status_code == 403
    assert len(world.run(_answers, world, sealed.message_id)) == 1
