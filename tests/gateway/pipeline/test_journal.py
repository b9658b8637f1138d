"""Exchange journal reports through the real gateway: SMTP in, pipeline, then the archive
and the database looked at; nothing ever reaches the relay sink."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import smtplib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from archive.models import JournalEntry
from core.accounts.tenant_settings import update_tenant
from core.errors import PermanentError
from core.models import Base, Message, MessageRecipient, OutboxItem, SealedObject, Tenant
from gateway.pipeline.journal import (
    JournalRecipient,
    MalformedReport,
    parse_report,
    parse_report_text,
)
from gateway.pipeline.runner import process_pending
from gateway.worker import run_once
from tests.gateway.conftest import asend, make_message, make_tenant
from tests.sealmail.test_cli import sm

MARKER = "Zebra-Quartz-7731"
JOURNAL = "journal@acme.example"
BOUNDARY = "----=_journal_b0undary"


def original_message(message_id: str = "<orig-1@acme.example>", body: bytes = b"") -> bytes:
    body = body or (
        f"Quarterly numbers {MARKER}\r\n".encode() + b"caf\xc3\xa9 \xe9t\xe9 \xff\xfe\x80\x81\r\n"
        b"..a line with a leading dot\r\n"
        b"--not-the-boundary\r\n"
        b"trailing spaces   \r\n"
    )
    return (
        b"From: Alice <alice@acme.example>\r\n"
        b"To: list@acme.example, bob@partner.example\r\n"
        b"Subject: " + f"Secret plan {MARKER}".encode() + b"\r\n"
        b"Message-ID: " + message_id.encode() + b"\r\n"
        b"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n"
        b"\r\n" + body
    )


REPORT_LINES = (
    "Sender: alice@acme.example",
    f"Subject: Secret plan {MARKER}",
    "Message-Id: <orig-1@acme.example>",
    "To: bob@partner.example",
    "To: carol@acme.example, Expanded: list@acme.example",
    "Cc: dave@partner.example",
    "Bcc: eve@hidden.example",
    "Recipient: frank@acme.example, Forwarded: gina@acme.example",
)


def journal_report(
    original: bytes,
    lines: tuple[str, ...] = REPORT_LINES,
    cte: str = "binary",
    header: bool = True,
    message_id: str = "<report-1@acme.example>",
) -> bytes:
    inner = original
    if cte == "base64":
        inner = base64.encodebytes(original).replace(b"\n", b"\r\n")
    report = "\r\n".join(lines).encode() + b"\r\n"
    head = (
        "From: Microsoft Exchange <journal-sender@acme.example>\r\n"
        f"To: {JOURNAL}\r\n"
        "Subject: journal report\r\n"
        f"Message-ID: {message_id}\r\n"
        + ("X-MS-Journal-Report:\r\n" if header else "")
        + "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/mixed; boundary="{BOUNDARY}"\r\n'
        "\r\n"
        "This is a journal report.\r\n"
    ).encode()
    return (
        head
        + f"--{BOUNDARY}\r\nContent-Type: text/plain; charset=us-ascii\r\n"
        "Content-Transfer-Encoding: 7bit\r\n\r\n".encode()
        + report
        + f"\r\n--{BOUNDARY}\r\nContent-Type: message/rfc822\r\n"
        f"Content-Transfer-Encoding: {cte}\r\n\r\n".encode()
        + inner
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


async def send_report(gateway, tenant, data: bytes, rcpt: str = JOURNAL) -> None:  # noqa: ANN001
    result = await asend(
        gateway, data, "alice@acme.example", [rcpt], login=(tenant.username, tenant.password)
    )
    assert result == {}  # 250: never refused


async def entries(services) -> list[JournalEntry]:  # noqa: ANN001
    async with services.db.session() as s:
        return list((await s.execute(select(JournalEntry))).scalars().all())


async def opened(services, tenant_id: str, entry: JournalEntry) -> tuple[bytes, dict]:  # noqa: ANN001
    async with services.db.session() as s:
        original = await services.vault.read(s, tenant_id, entry.object_id)
        meta = json.loads(await services.vault.read(s, tenant_id, entry.meta_object_id))
        kind = (await s.get(SealedObject, entry.object_id)).kind
    assert kind == "journal"
    return original, meta


async def assert_nothing_out(services, sink) -> None:  # noqa: ANN001
    async with services.db.session() as s:
        assert (await s.execute(select(OutboxItem))).scalars().all() == []
        messages = (await s.execute(select(Message))).scalars().all()
        rcpts = (await s.execute(select(MessageRecipient))).scalars().all()
    assert messages and all(m.state == "processed" for m in messages)
    assert all(m.disposition == "journal" for m in messages)
    assert rcpts and all(r.state == "done" and r.disposition == "journal" for r in rcpts)
    await run_once(services)  # a delivery round too: still nothing
    await asyncio.sleep(0.2)
    assert sink.messages == []


async def assert_no_clear_text(services, settings) -> None:  # noqa: ANN001
    """No row of any table and (SQLite) no byte of the database file holds the marker."""
    needle = MARKER.encode()
    async with services.db.session() as s:
        for table in Base.metadata.sorted_tables:
            rows = (await s.execute(text(f'SELECT * FROM "{table.name}"'))).all()  # noqa: S608
            assert MARKER not in repr(rows), table.name
    if settings.database_url.startswith("sqlite:///"):
        path = Path(settings.database_url.removeprefix("sqlite:///"))
        for f in (path, path.with_name(path.name + "-wal")):
            if f.exists():
                assert needle not in f.read_bytes(), f


async def test_report_unwrapped_binary_original_kept_exactly(
    gateway, tenant, gw_services, gw_settings, sink
):
    original = original_message()
    await send_report(gateway, tenant, journal_report(original, cte="binary"))
    assert await process_pending(gw_services) == 1
    (entry,) = await entries(gw_services)
    assert not entry.malformed and entry.duplicates == 0
    archived, meta = await opened(gw_services, tenant.id, entry)
    assert hashlib.sha256(archived).hexdigest() == hashlib.sha256(original).hexdigest()
    assert meta["message_id"] == "<orig-1@acme.example>"
    assert meta["sender"] == "alice@acme.example"
    assert meta["subject"] == f"Secret plan {MARKER}"
    assert meta["malformed"] is False
    assert meta["recipients"] == [
        {"address": "bob@partner.example", "kind": "to", "expanded": "", "forwarded": ""},
        {
            "address": "carol@acme.example",
            "kind": "to",
            "expanded": "list@acme.example",
            "forwarded": "",
        },
        {"address": "dave@partner.example", "kind": "cc", "expanded": "", "forwarded": ""},
        {"address": "eve@hidden.example", "kind": "bcc", "expanded": "", "forwarded": ""},
        {
            "address": "frank@acme.example",
            "kind": "recipient",
            "expanded": "",
            "forwarded": "gina@acme.example",
        },
    ]
    assert len(entry.dedupe_key) == 64 and "orig-1" not in entry.dedupe_key
    async with gw_services.db.session() as s:
        message = (await s.execute(select(Message))).scalar_one()
    assert entry.message_id == message.id
    await assert_nothing_out(gw_services, sink)
    await assert_no_clear_text(gw_services, gw_settings)


async def test_base64_wrapped_original_decoded(gateway, tenant, gw_services, sink):
    original = original_message(body=bytes(range(1, 256)).replace(b"\r", b"").replace(b"\n", b""))
    await send_report(gateway, tenant, journal_report(original, cte="base64"))
    await process_pending(gw_services)
    (entry,) = await entries(gw_services)
    archived, meta = await opened(gw_services, tenant.id, entry)
    assert archived == original and not entry.malformed
    assert meta["sha256"] == hashlib.sha256(original).hexdigest()
    await assert_nothing_out(gw_services, sink)


async def test_duplicate_archived_once(gateway, tenant, gw_services, sink):
    original = original_message()
    # the same journaled message, reported twice (recipient lines in another order)
    await send_report(gateway, tenant, journal_report(original, message_id="<r1@x>"))
    await process_pending(gw_services)
    again = (*REPORT_LINES[:3], *reversed(REPORT_LINES[3:]))
    await send_report(gateway, tenant, journal_report(original, again, message_id="<r2@x>"))
    await process_pending(gw_services)
    (entry,) = await entries(gw_services)
    assert entry.duplicates == 1
    async with gw_services.db.session() as s:
        kinds = (await s.execute(select(SealedObject.kind))).scalars().all()
    assert kinds.count("journal") == 1
    # another recipient list is another journal entry
    other = (*REPORT_LINES[:3], "To: zed@partner.example")
    await send_report(gateway, tenant, journal_report(original, other, message_id="<r3@x>"))
    await process_pending(gw_services)
    assert sorted(e.duplicates for e in await entries(gw_services)) == [0, 1]
    await assert_nothing_out(gw_services, sink)


async def test_duplicates_processed_together_converge(gateway, tenant, gw_services, sink):
    original = original_message()
    for n in range(2):
        await send_report(gateway, tenant, journal_report(original, message_id=f"<c{n}@x>"))
    for _ in range(40):  # a worker that lost the race retries after its backoff
        await process_pending(gw_services)
        async with gw_services.db.session() as s:
            states = (await s.execute(select(Message.state))).scalars().all()
        if all(st == "processed" for st in states):
            break
        await asyncio.sleep(0.25)
    (entry,) = await entries(gw_services)
    assert entry.duplicates == 1
    await assert_nothing_out(gw_services, sink)


async def test_malformed_archived_as_it_came(gateway, tenant, gw_services, gw_settings, sink):
    no_original = (
        b"From: Microsoft Exchange <journal-sender@acme.example>\r\n"
        b"To: journal@acme.example\r\nX-MS-Journal-Report: \r\n"
        b"Subject: " + MARKER.encode() + b"\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain\r\n\r\nSender: a@acme.example\r\n"
    )
    only_text = journal_report(original_message()).replace(
        b"Content-Type: message/rfc822", b"Content-Type: text/plain"
    )
    no_message_id = journal_report(original_message(), lines=(*REPORT_LINES[:2], "To: b@x"))
    unterminated = journal_report(original_message()).rsplit(b"--" + BOUNDARY.encode(), 1)[0]
    for data in (no_original, only_text, no_message_id, unterminated):
        await send_report(gateway, tenant, data)
    assert await process_pending(gw_services) == 4
    found = await entries(gw_services)
    assert len(found) == 4 and all(e.malformed for e in found)
    async with gw_services.db.session() as s:
        by_qid = {
            m.id: await gw_services.vault.read(s, tenant.id, m.raw_object_id)
            for m in (await s.execute(select(Message))).scalars().all()
        }
    for e in found:
        archived, meta = await opened(gw_services, tenant.id, e)
        assert archived == by_qid[e.message_id]  # the whole report, as it came
        assert meta["malformed"] is True and meta["problem"]
    problems = sorted([(await opened(gw_services, tenant.id, e))[1]["problem"] for e in found])
    assert any("Message-Id" in p for p in problems)
    assert any("no message/rfc822 part" in p for p in problems)
    assert any("not a multipart" in p for p in problems)
    assert any("closing delimiter" in p for p in problems)
    await assert_nothing_out(gw_services, sink)
    await assert_no_clear_text(gw_services, gw_settings)


async def test_journal_address_without_header(gateway, tenant, gw_services, sink):
    async with gw_services.db.session() as s:
        (await s.get(Tenant, tenant.id)).journal_address = "Journal@Acme.example"
        await s.commit()
    original = original_message()
    await send_report(gateway, tenant, journal_report(original, header=False), rcpt=JOURNAL)
    # a plain message to the journal address is archived too, flagged: not a report
    await send_report(gateway, tenant, make_message(subject=MARKER), rcpt=JOURNAL)
    await process_pending(gw_services)
    found = sorted(await entries(gw_services), key=lambda e: e.malformed)
    assert [e.malformed for e in found] == [False, True]
    archived, _ = await opened(gw_services, tenant.id, found[0])
    assert archived == original
    await assert_nothing_out(gw_services, sink)


async def test_ordinary_mail_is_not_journaled(gateway, tenant, gw_services, sink):
    await send_report(gateway, tenant, make_message(), rcpt="bob@partner.example")
    await run_once(gw_services)
    await sink.wait_for(1)
    assert await entries(gw_services) == []


def test_report_text_parsing():
    fields, rcpts, others = parse_report_text(
        "Sender: a@x\r\nSubject: s: with colon\r\nMessage-ID: <m@x>\r\n"
        "On-Behalf-Of: boss@x\r\n"
        "To: <list@x>, Expanded: outer@x\r\n"
        "Recipient: p@x, q@x, Forwarded: r@x\r\n"
        "BCC: hidden@x\r\nnot a field line\r\n"
    )
    assert fields == {"sender": "a@x", "subject": "s: with colon", "message-id": "<m@x>"}
    assert rcpts == [
        JournalRecipient("list@x", "to", expanded="outer@x"),
        JournalRecipient("p@x", "recipient"),
        JournalRecipient("q@x", "recipient", forwarded="r@x"),
        JournalRecipient("hidden@x", "bcc"),
    ]
    assert others == [("On-Behalf-Of", "boss@x")]


def test_original_sliced_not_reserialised():
    # odd but legal header folding and spacing a parser would rewrite
    original = (
        b"Subject:   spaced\r\n\tand folded\r\nX-Odd:value\r\nMessage-ID: <o@x>\r\n\r\nbody\r\n\r\n"
    )
    report = parse_report(journal_report(original))
    assert report.original == original
    assert report.message_id == "<orig-1@acme.example>"


async def test_update_tenant_journal_address_must_be_an_address(gw_services, tenant):
    async with gw_services.db.session() as s:
        t = await s.get(Tenant, tenant.id)
        for bad in ("journal", "@acme.example", "two@@acme.example", "a b@acme.example"):
            with pytest.raises(PermanentError):
                await update_tenant(s, t, "test", journal_address=bad)
        changed = await update_tenant(s, t, "test", journal_address=" Journal@ACME.example")
        assert changed == {"journal_address": "journal@acme.example"}
        assert await update_tenant(s, t, "test", journal_address="") == {"journal_address": ""}


def test_cli_tenant_update_journal_address(tmp_path, db_url):
    env = {} if db_url.startswith("sqlite") else {"SEALMAIL_DATABASE_URL": db_url}
    assert sm("init", "--dir", str(tmp_path / "w"), cwd=tmp_path, env=env).returncode == 0
    wd = tmp_path / "w"
    cfg = str(wd / "sealmail.toml")
    r = sm(
        "--config", cfg, "tenant", "update", "demo", "--journal-address", "Journal@demo.example",
        "--json", cwd=wd, env=env,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["changed"] == {"journal_address": "journal@demo.example"}
    shown = sm("--config", cfg, "tenant", "show", "demo", "--json", cwd=wd, env=env)
    assert json.loads(shown.stdout)["journal_address"] == "journal@demo.example"
    bad = sm(
        "--config", cfg, "tenant", "update", "demo", "--journal-address", "not an address",
        cwd=wd, env=env,
    )  # fmt: skip
    assert bad.returncode == 1 and bad.stderr.startswith("sealmail: ") and "journal" in bad.stderr
    # Exchange Online journals to an outside address (the MSP's): allowed, but unique
    outside = sm(
        "--config", cfg, "tenant", "update", "demo", "--journal-address",
        "demo-j7k2@journal.msp.example", cwd=wd, env=env,
    )  # fmt: skip
    assert outside.returncode == 0, outside.stderr
    made = sm("--config", cfg, "tenant", "create", "Other", "--domain", "other.example",
              cwd=wd, env=env)  # fmt: skip
    assert made.returncode == 0, made.stderr
    taken = sm(
        "--config", cfg, "tenant", "update", "Other", "--journal-address",
        "Demo-J7K2@journal.msp.example", cwd=wd, env=env,
    )  # fmt: skip
    assert taken.returncode == 1 and "another tenant" in taken.stderr
    assert len(taken.stderr.strip().splitlines()) == 1


_line = st.binary(max_size=80).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))


@settings(max_examples=200, deadline=None)
@given(lines=st.lists(_line, max_size=30), cte=st.sampled_from(["binary", "8bit", "base64"]))
def test_any_original_comes_back_exactly(lines, cte):
    body = b"".join(line + b"\r\n" for line in lines)
    original = b"Message-ID: <p@x>\r\nSubject: s\r\n\r\n" + body
    if BOUNDARY.encode() in original:
        return
    assert parse_report(journal_report(original, cte=cte)).original == original


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=400), cut=st.integers(min_value=0, max_value=2000))
def test_parser_only_ever_says_malformed(data, cut):
    report = journal_report(original_message())
    for candidate in (data, report[:cut] + data, report[:cut]):
        try:
            parse_report(candidate)
        except MalformedReport:
            pass


EXCHANGE_SENDER = "MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@acme.onmicrosoft.com"


@pytest.mark.parametrize("mail_from", [EXCHANGE_SENDER, ""])
async def test_reports_from_exchange_system_sender(gateway, tenant, gw_services, sink, mail_from):
    """Exchange sends reports from its own address (or <>), outside the tenant's domains:
    accepted for the journal address, refused for anyone else."""
    async with gw_services.db.session() as s:
        (await s.get(Tenant, tenant.id)).journal_address = JOURNAL
        await s.commit()
    original = original_message()
    login = (tenant.username, tenant.password)
    result = await asend(gateway, journal_report(original), mail_from, [JOURNAL], login=login)
    assert result == {}
    await process_pending(gw_services)
    # the same sender may not relay to anyone else: refused at RCPT, the journal copy kept
    result = await asend(
        gateway, journal_report(original), mail_from, [JOURNAL, "bob@partner.example"], login=login
    )
    assert result == {"bob@partner.example": (550, b"5.7.1 relay access denied")}
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        await asend(gateway, make_message(), mail_from, ["bob@partner.example"], login=login)
    await process_pending(gw_services)
    found = await entries(gw_services)
    assert len(found) == 1 and found[0].duplicates == 1 and not found[0].malformed
    archived, _ = await opened(gw_services, tenant.id, found[0])
    assert archived == original
    await assert_nothing_out(gw_services, sink)


async def test_foreign_sender_refused_without_journal_address(gateway, tenant):
    with pytest.raises(smtplib.SMTPSenderRefused) as err:
        await asend(
            gateway,
            journal_report(original_message()),
            EXCHANGE_SENDER,
            [JOURNAL],
            login=(tenant.username, tenant.password),
        )
    assert (err.value.smtp_code, err.value.smtp_error) == (550, b"5.7.1 relay access denied")


async def test_connector_report_from_exchange_sender(gateway, gw_services, sink):
    """Through a connector (token header + allowed network) the tenant is known only at
    DATA: a report (X-MS-Journal-Report) from Exchange's address is accepted even with no
    journal address set; an ordinary message from that address is still refused."""
    t = await make_tenant(
        gw_services, "M365J", ("m365j.example",), networks=(("127.0.0.0/8", False),)
    )
    token = f"X-Sealmail-Tenant-Token: {t.token}\r\n".encode()
    original = original_message()
    report = token + journal_report(original)
    assert await asend(gateway, report, EXCHANGE_SENDER, ["journal@m365j.example"]) == {}
    await process_pending(gw_services)
    assert await asend(gateway, report, "", ["j@m365j.example"]) == {}
    with pytest.raises(smtplib.SMTPDataError) as err:
        await asend(gateway, token + make_message(), EXCHANGE_SENDER, ["bob@partner.example"])
    assert (err.value.smtp_code, err.value.smtp_error) == (550, b"5.7.1 relay access denied")
    await process_pending(gw_services)
    found = await entries(gw_services)
    assert len(found) == 1 and found[0].tenant_id == t.id and found[0].duplicates == 1
    archived, _ = await opened(gw_services, t.id, found[0])
    assert archived == original
    await assert_nothing_out(gw_services, sink)


async def test_journal_address_names_the_tenant(gateway, gw_services, sink):
    """Exchange Online journals to an address outside the organisation, through an
    outbound connector that cannot add our token: from the tenant's networks, its unique
    journal address alone identifies the tenant, and it must be the only recipient."""
    t = await make_tenant(gw_services, "EXO", ("exo.example",), networks=(("127.0.0.0/8", False),))
    address = "exo-7k2q@journal.msp.example"
    async with gw_services.db.session() as s:
        (await s.get(Tenant, t.id)).journal_address = address
        await s.commit()
    original = original_message()
    report = journal_report(original)
    assert await asend(gateway, report, EXCHANGE_SENDER, [address.upper()]) == {}
    await process_pending(gw_services)
    assert await asend(gateway, report, "", [address, "bob@partner.example"]) == {
        "bob@partner.example": (550, b"5.7.1 relay access denied")
    }
    # the journal address after an ordinary recipient does not lend that one a tenant:
    # refused at RCPT, and bob still needs a connector token (refused at DATA)
    with pytest.raises(smtplib.SMTPDataError) as err:
        await asend(gateway, make_message(), EXCHANGE_SENDER, ["bob@partner.example", address])
    assert (err.value.smtp_code, err.value.smtp_error) == (550, b"5.7.1 relay access denied")
    await process_pending(gw_services)
    found = await entries(gw_services)
    assert len(found) == 1 and found[0].tenant_id == t.id and found[0].duplicates == 1
    archived, _ = await opened(gw_services, t.id, found[0])
    assert archived == original
    await assert_nothing_out(gw_services, sink)
