"""The pipeline's part of secure conversations (issue 12), on both databases, through real
sockets: per-message options stored and removed before anything leaves, threading by the
portal's parent or by In-Reply-To / References, messages written in the portal routed
(internal by mail, external sealed, policy holds standing), the author's own copy, the
``notified`` event, and a notice that does not invite a clear reply."""

from __future__ import annotations

import json
import logging
import time
from email import message_from_bytes
from email.policy import default as default_policy

from sqlalchemy import select

from conversations import events, submit
from conversations.compose import Draft, chunks, prepare
from conversations.models import MessageEvent
from conversations.threads import msgid_hash
from core.models import Message, MessageRecipient, PortalAccess
from core.policy import parse_policy
from core.policy.models import PolicyDecision
from core.policy.store import set_policy
from gateway.headers import split_header_block
from gateway.worker import run_once
from tests.gateway.conftest import asend, make_message, make_tenant, whole_reads

OPTIONS = (
    "X-Sealmail-Expires: 2h\r\nX-Sealmail-Receipt: yes\r\n"
    "X-Sealmail-Reply: sender\r\nX-Sealmail-Forward: internal\r\n"
)


async def _send(gateway, tenant, message: bytes, rcpts=("bob@partner.example",)) -> None:  # noqa: ANN001
    result = await asend(
        gateway,
        message,
        "alice@acme.example",
        list(rcpts),
        login=(tenant.username, tenant.password),
    )
    assert result == {}


def _internal_headers(content: bytes) -> list[str]:
    block, _ = split_header_block(content)
    names = [
        line.split(b":", 1)[0].decode().lower()
        for line in block.splitlines()
        if line[:1] not in (b" ", b"\t")
    ]
    return sorted(n for n in names if n.startswith("x-sealmail-"))


def _all_internal(content: bytes) -> set[str]:
    """Every X-Sealmail-* header name anywhere in the bytes (any MIME level)."""
    import re

    return {m.lower() for m in re.findall(rb"(?im)^(x-sealmail-[a-z-]+):", content)}


async def _messages(services) -> list[Message]:  # noqa: ANN001
    async with services.db.session() as s:
        return list((await s.execute(select(Message).order_by(Message.received_at))).scalars())


async def test_options_are_stored_and_never_leave(gateway, tenant, gw_services, sink):
    before = time.time()
    await _send(gateway, tenant, make_message(subject="[secure] Loan", extra=OPTIONS))
    await _send(
        gateway,
        tenant,
        make_message(subject="plain", extra=OPTIONS, message_id="<clear@acme.example>"),
    )
    await run_once(gw_services)
    sealed, clear = await _messages(gw_services)
    assert sealed.disposition == "portal" and clear.disposition == "clear"
    for m in (sealed, clear):
        assert (m.receipt, m.reply_mode, m.forward_mode) == (True, "sender", "internal")
    async with gw_services.db.session() as s:
        (access,) = (await s.execute(select(PortalAccess))).scalars().all()
    assert before + 7200 - 5 <= access.expires_at <= time.time() + 7200 + 5
    got = await sink.wait_for(2)
    for m in got:
        assert _all_internal(m.content) == {b"x-sealmail-processed"}, m.content[:600]
    notice = next(m for m in got if m.rcpt_tos == ["bob@partner.example"] and b"/m/" in m.content)
    parsed = message_from_bytes(notice.content, policy=default_policy)
    assert parsed["Reply-To"] is None
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["X-Auto-Response-Suppress"] == "All"
    assert "press Reply" in parsed.get_body(("plain",)).get_content()


async def test_an_invalid_option_is_logged_and_ignored(gateway, tenant, gw_services, sink, caplog):
    caplog.set_level(logging.WARNING, logger="sealmail.gateway.pipeline")
    bad = "X-Sealmail-Reply: everybody\r\nX-Sealmail-Expires: yesterday\r\n"
    await _send(gateway, tenant, make_message(subject="[secure] x", extra=bad))
    await run_once(gw_services)
    (m,) = await _messages(gw_services)
    assert m.state == "processed" and m.disposition == "portal"
    assert m.reply_mode == "" and m.receipt is False
    text = caplog.text
    assert "X-Sealmail-Reply ignored" in text and "X-Sealmail-Expires ignored" in text
    async with gw_services.db.session() as s:
        (access,) = (await s.execute(select(PortalAccess))).scalars().all()
    lifetime = gw_services.settings.portal_link_lifetime
    assert abs(access.expires_at - (time.time() + lifetime)) < 60
    (notice,) = await sink.wait_for(1)
    assert _all_internal(notice.content) == {b"x-sealmail-processed"}


async def test_the_tenant_default_receipt(gateway, gw_services, sink):
    t = await make_tenant(gw_services, "Beta", ("acme.example",), receipt_default=True)
    await _send(gateway, t, make_message(subject="[secure] a"))
    await _send(
        gateway,
        t,
        make_message(subject="[secure] b", extra="X-Sealmail-Receipt: no\r\n", message_id="<b@x>"),
    )
    await run_once(gw_services)
    first, second = await _messages(gw_services)
    assert first.receipt is True and second.receipt is False


async def test_a_reply_by_mail_joins_its_thread(gateway, tenant, gw_services, sink):
    await _send(
        gateway, tenant, make_message(subject="[secure] start", message_id="<a1@acme.example>")
    )
    await run_once(gw_services)
    reply = make_message(
        subject="Re: start",
        message_id="<b2@acme.example>",
        extra="In-Reply-To: <a1@ACME.example>\r\nReferences: <zz@else> <a1@acme.example>\r\n",
    )
    await _send(gateway, tenant, reply)
    await _send(gateway, tenant, make_message(subject="other", message_id="<c3@acme.example>"))
    await run_once(gw_services)
    a, b, c = await _messages(gw_services)
    assert a.thread_id == a.id and a.msgid_hash == msgid_hash(tenant.id, "a1@acme.example")
    assert (b.thread_id, b.parent_id) == (a.id, a.id)
    assert c.thread_id == c.id and c.parent_id == ""
    # "Re: start" has no keyword, yet it answers a sealed message: it is sealed too
    assert (a.disposition, b.disposition, c.disposition) == ("portal", "portal", "clear")
    async with gw_services.db.session() as s:
        why = (
            (await s.execute(select(PolicyDecision).where(PolicyDecision.message_id == b.id)))
            .scalars()
            .one()
        )
    assert json.loads(why.explanation)["trigger"] == "it answers a secure conversation"


async def _portal_reply(gw_services, tenant_id: str, parent: Message, rcpts: list[str]) -> str:  # noqa: ANN001
    draft = prepare(
        Draft(
            from_addr="Bob Partner <bob@partner.example>",
            to=rcpts,
            cc=[],
            subject="Re: Loan",
            text="Here are the papers.\n",
            in_reply_to="<m1@acme.example>",
            references="<m1@acme.example>",
            msgid_domain="portal.test",
        )
    )
    return await submit.submit(
        gw_services,
        tenant_id,
        "bob@partner.example",
        rcpts,
        chunks(draft),
        origin="reply",
        parent_id=parent.id,
        thread_id=parent.thread_id or parent.id,
        client="127.0.0.1",
    )


async def test_a_portal_reply_goes_by_mail_inside_and_sealed_outside(
    gateway, tenant, gw_services, sink
):
    await _send(gateway, tenant, make_message(subject="[secure] Loan"))
    await run_once(gw_services)
    (parent,) = await _messages(gw_services)
    await sink.wait_for(1)
    sink.messages.clear()
    qid = await _portal_reply(
        gw_services, tenant.id, parent, ["alice@acme.example", "carol@other.example"]
    )
    await run_once(gw_services)
    async with gw_services.db.session() as s:
        reply = await s.get(Message, qid)
        rcpts = {
            r.rcpt: r
            for r in (
                await s.execute(select(MessageRecipient).where(MessageRecipient.message_id == qid))
            ).scalars()
        }
        decisions = {
            d.rcpt: json.loads(d.explanation)
            for d in (
                await s.execute(select(PolicyDecision).where(PolicyDecision.message_id == qid))
            ).scalars()
        }
        accesses = (
            (await s.execute(select(PortalAccess).where(PortalAccess.message_id == qid)))
            .scalars()
            .all()
        )
    assert reply.state == "processed" and reply.thread_id == parent.id
    assert reply.parent_id == parent.id and reply.meta_object_id
    assert rcpts["alice@acme.example"].disposition == "clear"
    assert rcpts["carol@other.example"].disposition == "portal"
    assert "written in the secure portal" in rcpts["carol@other.example"].reason
    assert decisions["alice@acme.example"]["portal_route"] == "internal"
    assert decisions["carol@other.example"]["portal_route"] == "external"
    assert {d["portal_origin"] for d in decisions.values()} == {"reply"}
    kinds = sorted((a.kind, a.recipient) for a in accesses)
    assert kinds == [("author", "bob@partner.example"), ("recipient", "carol@other.example")]

    got = await sink.wait_for(2)
    assert not any("bob@partner.example" in m.rcpt_tos for m in got)  # no notice to the author
    inside = next(m for m in got if m.rcpt_tos == ["alice@acme.example"])
    assert inside.mail_from == "bob@partner.example"
    mail = message_from_bytes(inside.content, policy=default_policy)
    assert mail["From"] == "Bob Partner <bob@partner.example>"
    assert mail["In-Reply-To"] == "<m1@acme.example>"
    assert mail["References"] == "<m1@acme.example>"
    assert "Here are the papers." in mail.get_body(("plain",)).get_content()
    outside = next(m for m in got if m.rcpt_tos == ["carol@other.example"])
    assert b"Here are the papers" not in outside.content and b"/m/" in outside.content

    # a second pass (nothing pending) adds no second author copy
    async with gw_services.db.session() as s:
        n = len((await s.execute(select(PortalAccess).where(PortalAccess.kind == "author"))).all())
    assert n == 1


async def test_a_hold_rule_stands_for_a_portal_reply(gateway, tenant, gw_services, sink):
    policy = "rules:\n  - name: review\n    when: {subject_contains: Loan}\n    action: hold\n"
    async with gw_services.db.session() as s:
        await set_policy(s, tenant.id, parse_policy(policy), "test")
        await s.commit()
    await _send(gateway, tenant, make_message(subject="[secure] hello"))
    await run_once(gw_services)
    (parent,) = await _messages(gw_services)
    qid = await _portal_reply(
        gw_services, tenant.id, parent, ["alice@acme.example", "carol@other.example"]
    )
    await run_once(gw_services)
    async with gw_services.db.session() as s:
        found = (
            await s.execute(
                select(MessageRecipient.rcpt, MessageRecipient.disposition).where(
                    MessageRecipient.message_id == qid
                )
            )
        ).all()
    assert dict(found) == {"alice@acme.example": "hold", "carol@other.example": "hold"}


async def test_a_delivered_notice_is_a_notified_event(gateway, tenant, gw_services, sink):
    await _send(gateway, tenant, make_message(subject="[secure] x", extra=OPTIONS))
    await run_once(gw_services)
    await sink.wait_for(1)
    (m,) = await _messages(gw_services)
    async with gw_services.db.session() as s:
        found = await events.of_message(s, tenant.id, m.id)
        other = await events.of_message(s, "someone-else", m.id)
    assert [(e.kind, e.recipient, e.actor) for e in found] == [
        ("notified", "bob@partner.example", "delivery")
    ]
    assert json.loads(found[0].detail)["reply"].startswith("250")
    assert other == []


async def test_a_bounce_carries_no_internal_header(gateway, tenant, gw_services, sink):
    policy = (
        "rules:\n  - name: never\n    when: {subject_contains: forbidden}\n    action: reject\n"
    )
    async with gw_services.db.session() as s:
        await set_policy(s, tenant.id, parse_policy(policy), "test")
        await s.commit()
    await _send(gateway, tenant, make_message(subject="forbidden", extra=OPTIONS))
    await run_once(gw_services)
    (dsn,) = await sink.wait_for(1)
    assert dsn.rcpt_tos == ["alice@acme.example"] and b"multipart/report" in dsn.content
    assert b"Subject: forbidden" in dsn.content  # the original's headers are there...
    assert _all_internal(dsn.content) == {b"x-sealmail-processed"}  # ...but not ours
    async with gw_services.db.session() as s:
        n = len((await s.execute(select(MessageEvent))).all())
    assert n == 0  # a DSN is no notice


def test_encrypted_output_keeps_no_option_header_outside_or_inside() -> None:
    """PGP/MIME and S/MIME wrap what :func:`mime.split` gives them: neither the headers left
    outside nor the entity that is encrypted (protected headers included) carries one."""
    from gateway.pipeline.crypto import mime

    raw = make_message(subject="[secure] x", extra=OPTIONS + "X-Sealmail-Encrypt: yes\r\n")
    for protect in (False, True):
        outer, inner = mime.split(raw, protect=protect)
        assert not [n for n, _ in outer if n.lower().startswith("x-sealmail-")]
        assert _all_internal(mime.to_bytes(inner)) == set()
        assert _all_internal(mime.envelope(outer, "multipart/mixed", [inner])) == set()


async def test_a_large_portal_reply_is_routed_from_the_stream(
    gateway, tenant, gw_services, sink, monkeypatch
):
    """A message written in the portal may be as large as any (its attachments): above the
    large-path threshold it is decided and routed without being read whole, the same way."""
    from gateway.delivery import drain
    from gateway.pipeline import runner

    await _send(gateway, tenant, make_message(subject="[secure] Loan"))
    await run_once(gw_services)
    (parent,) = await _messages(gw_services)
    await sink.wait_for(1)
    sink.messages.clear()
    monkeypatch.setattr(runner, "LARGE", 200)
    monkeypatch.setattr(drain, "STREAM_ABOVE", 200)
    read_whole = whole_reads(gw_services, monkeypatch)
    qid = await _portal_reply(
        gw_services, tenant.id, parent, ["alice@acme.example", "carol@other.example"]
    )
    await run_once(gw_services)
    async with gw_services.db.session() as s:
        reply = await s.get(Message, qid)
        rcpts = {
            r.rcpt: r.disposition
            for r in (
                await s.execute(select(MessageRecipient).where(MessageRecipient.message_id == qid))
            ).scalars()
        }
    assert reply.state == "processed" and reply.raw_object_id not in read_whole
    assert rcpts == {"alice@acme.example": "clear", "carol@other.example": "portal"}
    got = await sink.wait_for(2)
    inside = next(m for m in got if m.rcpt_tos == ["alice@acme.example"])
    mail = message_from_bytes(inside.content, policy=default_policy)
    assert "Here are the papers." in mail.get_body(("plain",)).get_content()
    assert mail["In-Reply-To"] == "<m1@acme.example>"
