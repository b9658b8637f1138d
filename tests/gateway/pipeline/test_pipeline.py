"""The pipeline through real sockets: SMTP in, decisions, sealed parts, portal access,
notifications and clear copies out to the sink relay."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

from sqlalchemy import func, select

from core.models import Message, MessageRecipient, OutboxItem, PortalAccess, Recipient
from core.portal_message import PortalMessage
from gateway.headers import split_header_block
from gateway.pipeline.runner import process_pending
from gateway.stamp import has_valid_stamp, stamp
from gateway.worker import run_once
from tests.gateway.conftest import asend, make_message


async def send(gateway, tenant, message: bytes, rcpts=("bob@partner.example",)) -> None:  # noqa: ANN001
    result = await asend(
        gateway,
        message,
        "alice@acme.example",
        list(rcpts),
        login=(tenant.username, tenant.password),
    )
    assert result == {}


async def only_message(services) -> Message:  # noqa: ANN001
    async with services.db.session() as s:
        return (await s.execute(select(Message))).scalar_one()


async def test_encoded_folded_subject_triggers_portal(gateway, tenant, gw_services, sink):
    subject = "=?utf-8?q?Quarterly_report?=\r\n =?utf-8?b?W1NlY3VyZV0gw6l0w6k=?="  # "[Secure] été"
    await send(
        gateway,
        tenant,
        make_message(subject=subject, body="secret numbers\r\n"),
        rcpts=("bob@partner.example", "Carol@Other.example"),
    )
    assert await run_once(gw_services) >= 1
    m = await only_message(gw_services)
    assert m.state == "processed" and m.disposition == "portal" and m.meta_object_id
    async with gw_services.db.session() as s:
        meta = PortalMessage.from_json(await gw_services.vault.read(s, tenant.id, m.meta_object_id))
        text = await gw_services.vault.read(s, tenant.id, meta.text_object_id)
        access = (await s.execute(select(PortalAccess))).scalars().all()
        reasons = (await s.execute(select(MessageRecipient.reason))).scalars().all()
        known = (await s.execute(select(Recipient.email))).scalars().all()
    assert meta.subject == "Quarterly report été"
    assert text == b"secret numbers\r\n" or text == b"secret numbers\n"
    assert sorted(a.recipient for a in access) == ["bob@partner.example", "carol@other.example"]
    assert all(re.fullmatch(r"[0-9a-f]{64}", a.token_hash) for a in access)
    assert reasons and all(r.startswith("subject keyword [secure]") for r in reasons)
    assert sorted(known) == ["bob@partner.example", "carol@other.example"]

    notes = await sink.wait_for(2)
    by_rcpt = {n.rcpt_tos[0].lower(): n for n in notes}
    for a in access:
        note = by_rcpt[a.recipient]
        assert note.mail_from == "alice@acme.example"
        parsed = message_from_bytes(note.content, policy=default_policy)
        assert "[secure]" not in str(parsed["Subject"]).lower()
        assert b"secret numbers" not in note.content
        assert has_valid_stamp(gw_services.keyring.stamp_key, tenant.id, note.content)
        body = parsed.get_body(("plain",)).get_content()
        token = re.search(r"https://portal\.test/m/([A-Za-z0-9_-]+)", body).group(1)
        assert len(token) >= 22 and hashlib.sha256(token.encode()).hexdigest() == a.token_hash


async def test_a_known_recipient_is_written_once(gateway, tenant, gw_services, sink):
    """The tenant's recipients list gains an address once; later messages to it skip the
    INSERT (kept in memory per database), a new address is still added."""
    from sqlalchemy import event

    inserts: list[str] = []

    def count(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        if statement.lstrip().upper().startswith("INSERT INTO RECIPIENTS"):
            inserts.append(statement)

    engine = gw_services.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        for n, rcpts in enumerate(
            [
                ("bob@partner.example",),
                ("Bob@Partner.example",),
                ("bob@partner.example", "new@x.example"),
            ]
        ):
            await send(
                gateway,
                tenant,
                make_message(subject=f"[secure] n{n}", message_id=f"<k{n}@x>"),
                rcpts=rcpts,
            )
            await process_pending(gw_services)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    async with gw_services.db.session() as s:
        known = (await s.execute(select(Recipient.email).order_by(Recipient.email))).scalars()
        assert list(known) == ["bob@partner.example", "new@x.example"]
    assert len(inserts) == 2  # the first message, then only the third (for new@x.example)


async def test_encrypt_header_and_sensitivity(gateway, gw_services, sink):
    from tests.gateway.conftest import make_tenant

    t = await make_tenant(gw_services, sensitivity_trigger=True)
    await send(gateway, t, make_message(extra="X-Sealmail-Encrypt: YES\r\n", message_id="<a@x>"))
    await send(
        gateway, t, make_message(extra="Sensitivity: Company-Confidential\r\n", message_id="<b@x>")
    )
    await send(gateway, t, make_message(extra="Sensitivity: Personal\r\n", message_id="<c@x>"))
    await run_once(gw_services)
    async with gw_services.db.session() as s:
        rows = await s.execute(select(MessageRecipient.reason).order_by(MessageRecipient.id))
        reasons = rows.scalars().all()
    assert [r.split(" (policy")[0] for r in reasons] == [
        "header X-Sealmail-Encrypt",
        "header Sensitivity: Company-Confidential",
        "no rule matched: pass",
    ]


async def test_sensitivity_ignored_unless_tenant_opts_in(gateway, tenant, gw_services):
    await send(gateway, tenant, make_message(extra="Sensitivity: Company-Confidential\r\n"))
    await process_pending(gw_services)
    assert (await only_message(gw_services)).disposition == "clear"


async def test_clear_passthrough_keeps_bytes_strips_internal_headers(gateway, gw_services, sink):
    from tests.gateway.conftest import make_tenant

    t = await make_tenant(
        gw_services, "M365", ("acme.example",), networks=(("127.0.0.0/8", False),)
    )
    body = "Caf\u00e9 line one\r\n..leading dot\r\n" + "x" * 900 + "\r\n"
    original = make_message(
        body=body,
        extra=f"X-Sealmail-Tenant-Token: {t.token}\r\nX-Sealmail-Encrypt: no\r\n"
        "DKIM-Signature: v=1; a=rsa-sha256; d=acme.example; s=s1;\r\n\th=from:to; b=abc\r\n",
    )
    await asend(gateway, original, "alice@acme.example", ["bob@partner.example"])
    await run_once(gw_services)
    (out,) = await sink.wait_for(1)
    assert out.mail_from == "alice@acme.example" and out.rcpt_tos == ["bob@partner.example"]
    assert b"X-Sealmail-Tenant-Token" not in out.content and t.token.encode() not in out.content
    assert b"X-Sealmail-Encrypt" not in out.content
    assert out.content.startswith(b"X-Sealmail-Processed: " + t.id.encode() + b";")
    assert has_valid_stamp(gw_services.keyring.stamp_key, t.id, out.content)
    sent_head, sent_body = split_header_block(out.content)
    orig_head, orig_body = split_header_block(original)
    assert sent_body == orig_body  # byte for byte
    assert (
        b"DKIM-Signature: v=1; a=rsa-sha256; d=acme.example; s=s1;\r\n\th=from:to; b=abc\r\n"
        in sent_head
    )


async def test_stamped_message_is_not_processed_again(gateway, tenant, gw_services, sink):
    looped = stamp(
        gw_services.keyring.stamp_key,
        tenant.id,
        make_message(subject="[secure] again", body="loop body\r\n"),
    )
    await send(gateway, tenant, looped)
    # a stamp for another tenant, or a forged one, does not count
    forged = looped.replace(
        b"X-Sealmail-Processed: " + tenant.id.encode() + b";",
        b"X-Sealmail-Processed: " + tenant.id.encode() + b";00",
        1,
    )
    await send(gateway, tenant, forged.replace(b"<m1@acme.example>", b"<m2@acme.example>"))
    await run_once(gw_services)
    async with gw_services.db.session() as s:
        rows = (await s.execute(select(Message).order_by(Message.received_at))).scalars().all()
        n_access = (await s.execute(select(func.count()).select_from(PortalAccess))).scalar()
    assert sorted(r.disposition for r in rows) == ["clear", "portal"]
    assert n_access == 1
    received = await sink.wait_for(2)
    clear = [r for r in received if b"loop body" in r.content]
    assert len(clear) == 1 and b"Subject: [secure] again" in clear[0].content
    assert clear[0].content.count(b"X-Sealmail-Processed") == 1


def _with_attachment(marker: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Alice <alice@acme.example>"
    msg["To"] = "bob@partner.example"
    msg["Subject"] = "#secure contract"
    msg["Message-ID"] = "<att@acme.example>"
    msg.set_content(f"Body with {marker}.\n")
    msg.add_alternative(f"<p>HTML with {marker}</p>", subtype="html")
    payload = (f"attachment {marker} " * 2000).encode()
    msg.add_attachment(
        payload, maintype="application", subtype="octet-stream", filename="contract.bin"
    )
    return msg.as_bytes().replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n")


def _files_containing(root: Path, needles: list[bytes]) -> list[str]:
    hits = []
    for p in root.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            hits += [f"{p}: {n!r}" for n in needles if n in data]
    return hits


async def test_marker_never_stored_in_clear(gateway, tenant, gw_services, sink):
    marker = "ZEBRA-7731-MARKER"
    await send(gateway, tenant, _with_attachment(marker))
    await run_once(gw_services)
    await sink.wait_for(1)
    m = await only_message(gw_services)
    async with gw_services.db.session() as s:
        meta = PortalMessage.from_json(await gw_services.vault.read(s, tenant.id, m.meta_object_id))
        (part,) = meta.attachments
        data = await gw_services.vault.read(s, tenant.id, part.object_id)
        html = await gw_services.vault.read(s, tenant.id, meta.html_object_id)
    assert data == (f"attachment {marker} " * 2000).encode()
    assert part.filename == "contract.bin" and part.sha256 == hashlib.sha256(data).hexdigest()
    assert part.size == len(data) and marker.encode() in html
    needles = [marker.encode(), base64.b64encode(marker.encode())[:16], b"contract"]
    db_file = gw_services.settings.database_path
    roots = [Path(gw_services.settings.data_dir)] + ([Path(db_file).parent] if db_file else [])
    assert [h for r in roots for h in _files_containing(r, needles)] == []
    assert marker.encode() not in sink.messages[0].content


async def test_failure_keeps_message_received_and_backs_off(gateway, tenant, gw_services, sink):
    await send(gateway, tenant, make_message(subject="[secure] x"))
    m = await only_message(gw_services)
    archive = Path(gw_services.settings.archive_path)
    (raw_file,) = [p for p in archive.rglob(m.raw_object_id)]
    hidden = raw_file.with_name("hidden")
    raw_file.rename(hidden)
    assert await run_once(gw_services) == 0
    m = await only_message(gw_services)
    # a sealed object missing from our own store is our fault: retried soon, not counted
    assert m.state == "received" and m.attempts == 0 and m.last_error.startswith("outage: ")
    assert m.next_attempt_at > m.received_at
    async with gw_services.db.session() as s:
        assert (await s.execute(select(func.count()).select_from(OutboxItem))).scalar() == 0
    hidden.rename(raw_file)
    async with gw_services.db.session() as s:
        (await s.get(Message, m.id)).next_attempt_at = 0
        await s.commit()
    await run_once(gw_services)
    assert (await only_message(gw_services)).state == "processed"
    assert len(await sink.wait_for(1)) == 1


async def test_two_workers_process_each_message_once(gateway, tenant, gw_services):
    for i in range(6):
        await send(gateway, tenant, make_message(subject=f"[secure] {i}", message_id=f"<{i}@x>"))
    counts = await asyncio.gather(process_pending(gw_services), process_pending(gw_services))
    assert sum(counts) == 6
    async with gw_services.db.session() as s:
        assert (await s.execute(select(func.count()).select_from(OutboxItem))).scalar() == 6
        assert (await s.execute(select(func.count()).select_from(PortalAccess))).scalar() == 6


async def test_failure_unrecordable_while_database_down_is_recorded_next_round(
    gateway, tenant, gw_services, sink, monkeypatch
):
    """A pass fails and the database is too down to record it: the message must not wait
    out its whole claim (2 x queue_lease) once the database is back."""
    from core.errors import TransientError
    from core.models import now
    from gateway.pipeline import failure, runner

    await send(gateway, tenant, make_message(subject="[secure] x"))
    m = await only_message(gw_services)
    (raw_file,) = list(Path(gw_services.settings.archive_path).rglob(m.raw_object_id))
    hidden = raw_file.with_name("hidden")
    raw_file.rename(hidden)
    real_failed = failure.record_failure
    calls = []

    async def database_down_once(*args):  # noqa: ANN002
        calls.append(args[1])
        if len(calls) == 1:
            raise TransientError("database unavailable: ConnectionRefusedError")
        await real_failed(*args)

    monkeypatch.setattr(failure, "record_failure", database_down_once)
    assert await process_pending(gw_services) == 0
    m = await only_message(gw_services)
    claim = runner.claim_seconds(gw_services.settings)
    assert m.next_attempt_at > now() + claim / 2  # still claimed
    hidden.rename(raw_file)
    await process_pending(gw_services)  # the database is back: the failure is recorded first
    m = await only_message(gw_services)
    assert calls == [m.id, m.id]
    assert m.state == "received" and m.attempts == 0 and m.claimed_by == ""
    assert m.next_attempt_at < now() + 60  # retried soon, not after the claim
    async with gw_services.db.session() as s:
        (await s.get(Message, m.id)).next_attempt_at = 0
        await s.commit()
    await run_once(gw_services)
    assert (await only_message(gw_services)).state == "processed"
