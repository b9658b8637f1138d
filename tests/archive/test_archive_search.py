# ruff: noqa: F811 - the gateway fixtures are imported by name
"""The archive index through the real gateway: messages sent over SMTP, processed by the
pipeline, then searched by each criterion, paged, kept apart per tenant, exported; and no
subject word, address or digest in clear anywhere in the database."""

from __future__ import annotations

import email
import hashlib
import io
import json
import mailbox
import zipfile
from email.policy import default as default_policy
from pathlib import Path

import pytest
from sqlalchemy import select, text, update

from archive import export, index
from archive.models import ArchiveEntry, ArchiveTerm
from archive.search import Query, QueryError, parse_date, search
from core.models import Base, Tenant
from gateway.pipeline.runner import process_pending
from tests.gateway.conftest import (  # noqa: F401 - fixtures
    asend,
    gateway,
    gw_services,
    gw_settings,
    make_tenant,
    sink,
    tenant,
)
from tests.gateway.pipeline.test_journal import JOURNAL, REPORT_LINES, journal_report, send_report

MARK_SUBJECT = "Zanzibar"
MARK_ADDR = "quokka"


def message(
    subject: str,
    sender: str = "alice@acme.example",
    to: str = "bob@partner.example",
    cc: str = "",
    attachment: bytes | None = None,
    body: str = "Hello.\r\n",
    date: str = "Mon, 1 Jan 2024 10:00:00 +0000",
) -> bytes:
    head = (
        f"From: Someone <{sender}>\r\nTo: {to}\r\n"
        + (f"Cc: {cc}\r\n" if cc else "")
        + f"Subject: {subject}\r\nDate: {date}\r\nMessage-ID: <{hash(subject)}@acme.example>\r\n"
        "MIME-Version: 1.0\r\n"
    )
    if attachment is None:
        return (head + f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}").encode()
    return (
        head + 'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        f"--b1\r\nContent-Type: text/plain\r\n\r\n{body}\r\n"
        "--b1\r\nContent-Type: application/octet-stream\r\n"
        'Content-Disposition: attachment; filename="report.pdf"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
        + __import__("base64").b64encode(attachment).decode()
        + "\r\n--b1--\r\n"
    ).encode()


async def send(gateway, tenant, data: bytes, rcpts, mail_from="alice@acme.example") -> None:  # noqa: ANN001, F811
    result = await asend(
        gateway, data, mail_from, list(rcpts), login=(tenant.username, tenant.password)
    )
    assert result == {}


async def find(services, tenant_id: str, **kw) -> list[dict]:  # noqa: ANN001
    async with services.db.session() as s:
        page = await search(services, s, tenant_id, Query(**kw), limit=100)
    return [h.as_json() for h in page.hits]


@pytest.fixture
async def corpus(gateway, tenant, gw_services):  # noqa: ANN001, F811
    """Four messages of tenant A through the pipeline."""
    await send(
        gateway,
        tenant,
        message(f"Quarterly {MARK_SUBJECT} figures", to="bob@partner.example"),
        ["bob@partner.example"],
    )
    await send(
        gateway,
        tenant,
        message(
            "[secure] Payroll for March",
            sender=f"{MARK_ADDR}@acme.example",
            to="carol@other.example",
            cc="dave@partner.example",
        ),
        ["carol@other.example", "dave@partner.example", "hidden@secret.example"],
    )
    await send(
        gateway,
        tenant,
        message("Invoice attached", attachment=b"%PDF-1.4 fake", to="erin@partner.example"),
        ["erin@partner.example"],
    )
    await send(
        gateway,
        tenant,
        message("Über Straße café quarterly", to="frank@partner.example"),
        ["frank@partner.example"],
    )
    while await process_pending(gw_services):
        pass
    async with gw_services.db.session() as s:
        rows = (await s.execute(select(ArchiveEntry))).scalars().all()
    assert len(rows) == 4 and all(r.source == "gateway" for r in rows)
    return tenant


async def test_search_by_each_criterion(corpus, gw_services):  # noqa: ANN001
    t = corpus.id
    subjects = lambda hits: sorted(h["subject"] for h in hits)  # noqa: E731
    assert len(await find(gw_services, t)) == 4
    # subject words: every word must match; case, accents (NFKC) and order do not matter
    assert subjects(await find(gw_services, t, subject="quarterly")) == [
        f"Quarterly {MARK_SUBJECT} figures",
        "Über Straße café quarterly",
    ]
    assert subjects(await find(gw_services, t, subject="FIGURES quarterly")) == [
        f"Quarterly {MARK_SUBJECT} figures"
    ]
    assert await find(gw_services, t, subject="quarterly invoice") == []
    assert subjects(await find(gw_services, t, subject="straße ÜBER")) == [
        "Über Straße café quarterly"
    ]
    # sender: address or domain
    (hit,) = await find(gw_services, t, sender=f"{MARK_ADDR.upper()}@acme.example")
    assert hit["subject"] == "[secure] Payroll for March" and hit["decision"] == "portal"
    assert len(await find(gw_services, t, sender="@acme.example")) == 4
    assert await find(gw_services, t, sender="nobody@acme.example") == []
    # recipient: To, Cc and envelope-only (Bcc) recipients, address or domain
    for rcpt in ("carol@other.example", "dave@partner.example", "hidden@secret.example"):
        (hit,) = await find(gw_services, t, recipient=rcpt)
        assert hit["from"] == f"{MARK_ADDR}@acme.example"
    assert hit["bcc"] == ["hidden@secret.example"]
    assert len(await find(gw_services, t, recipient="partner.example")) == 4
    # attachment and decision
    (hit,) = await find(gw_services, t, has_attachment=True)
    assert hit["subject"] == "Invoice attached" and hit["attachments"] == ["report.pdf"]
    assert len(await find(gw_services, t, decision="clear")) == 3
    assert len(await find(gw_services, t, decision="portal")) == 1
    assert await find(gw_services, t, decision="hold") == []
    # combinations
    assert len(await find(gw_services, t, decision="clear", recipient="erin@partner.example")) == 1
    assert await find(gw_services, t, decision="portal", has_attachment=True) == []


async def test_date_range_and_pagination(corpus, gw_services):  # noqa: ANN001
    t = corpus.id
    async with gw_services.db.session() as s:
        rows = list(
            (await s.execute(select(ArchiveEntry).order_by(ArchiveEntry.received_at)))
            .scalars()
            .all()
        )
        # spread the four over four days (received_at is the clear date column)
        for n, r in enumerate(rows):
            r.received_at = parse_date(f"2025-03-0{n + 1}") + 3600
            await s.execute(
                update(ArchiveTerm)
                .where(ArchiveTerm.entry_id == r.id)
                .values(received_at=r.received_at)
            )
        await s.commit()
    ids = [r.id for r in rows]
    got = await find(gw_services, t, after=parse_date("2025-03-02"))
    assert [h["id"] for h in got] == ids[:0:-1]  # newest first
    got = await find(
        gw_services, t, after=parse_date("2025-03-02"), before=parse_date("2025-03-03", end=True)
    )
    assert [h["id"] for h in got] == [ids[2], ids[1]]
    with pytest.raises(QueryError):
        Query(after=parse_date("2025-03-04"), before=parse_date("2025-03-01"))
    with pytest.raises(QueryError):
        parse_date("yesterday")
    # pages of one, stable: the union is everything once, in order
    seen: list[str] = []
    for page_no in (1, 2, 3, 4, 5):
        async with gw_services.db.session() as s:
            page = await search(gw_services, s, t, Query(), page=page_no, limit=1)
        assert page.total == 4 and page.pages == 4 and page.has_next == (page_no < 4)
        seen += [h.entry.id for h in page.hits]
    assert seen == ids[::-1]


async def test_tenant_isolation(corpus, gateway, gw_services):  # noqa: ANN001, F811
    other = await make_tenant(gw_services, name="Beta", domains=("beta.example",))
    await send(
        gateway,
        other,
        message(f"Quarterly {MARK_SUBJECT} figures", sender="zed@beta.example"),
        ["bob@partner.example"],
        mail_from="zed@beta.example",
    )
    await process_pending(gw_services)
    # each tenant finds only its own entry for the same words and recipient
    a = await find(gw_services, corpus.id, subject=MARK_SUBJECT, recipient="bob@partner.example")
    b = await find(gw_services, other.id, subject=MARK_SUBJECT, recipient="bob@partner.example")
    assert len(a) == len(b) == 1 and a[0]["id"] != b[0]["id"]
    assert len(await find(gw_services, other.id)) == 1
    # and the same word is a different token per tenant
    async with gw_services.db.session() as s:
        terms = (await s.execute(select(ArchiveTerm))).scalars().all()
    ka = index.token(index.index_key(gw_services.root_key, corpus.id), "subject", "zanzibar")
    kb = index.token(index.index_key(gw_services.root_key, other.id), "subject", "zanzibar")
    assert ka != kb
    assert {t.tenant_id for t in terms if t.token == ka} == {corpus.id}
    assert {t.tenant_id for t in terms if t.token == kb} == {other.id}


async def test_nothing_in_clear(corpus, gw_services, gw_settings):  # noqa: ANN001, F811
    """No subject word, From address or digest of an original in any text column."""
    async with gw_services.db.session() as s:
        metas = [
            await gw_services.vault.read(s, corpus.id, e.meta_object_id)
            for e in (await s.execute(select(ArchiveEntry))).scalars().all()
        ]
    digests = [json.loads(m)["sha256"] for m in metas]
    assert all(len(d) == 64 for d in digests)
    needles = [MARK_SUBJECT.lower(), MARK_ADDR, "payroll", "straße", *digests]
    async with gw_services.db.session() as s:
        for table in Base.metadata.sorted_tables:
            rows = (await s.execute(text(f'SELECT * FROM "{table.name}"'))).all()  # noqa: S608
            dump = repr(rows).lower()
            for needle in needles:
                assert needle.lower() not in dump, (table.name, needle)
    if gw_settings.database_url.startswith("sqlite:///"):
        path = Path(gw_settings.database_url.removeprefix("sqlite:///"))
        for f in (path, path.with_name(path.name + "-wal")):
            if f.exists():
                data = f.read_bytes().lower()
                assert MARK_SUBJECT.lower().encode() not in data
                assert MARK_ADDR.encode() not in data


async def test_journal_report_indexed_with_bcc_once(gateway, tenant, gw_services):  # noqa: ANN001, F811
    original = message(f"Board {MARK_SUBJECT} minutes", to="bob@partner.example")
    await send_report(gateway, tenant, journal_report(original, message_id="<r1@x>"))
    await process_pending(gw_services)
    again = (*REPORT_LINES[:3], *reversed(REPORT_LINES[3:]))
    await send_report(gateway, tenant, journal_report(original, again, message_id="<r2@x>"))
    await process_pending(gw_services)
    async with gw_services.db.session() as s:
        rows = (await s.execute(select(ArchiveEntry))).scalars().all()
    assert [(r.source, r.decision) for r in rows] == [("journal", "journal")]
    # the report's Bcc, expanded and forwarded-to recipients are searchable
    for rcpt in ("eve@hidden.example", "carol@acme.example", "list@acme.example", JOURNAL[:0]):
        if rcpt:
            (hit,) = await find(gw_services, tenant.id, recipient=rcpt)
            assert hit["source"] == "journal"
    (hit,) = await find(gw_services, tenant.id, subject="minutes board", decision="journal")
    assert "eve@hidden.example" in hit["bcc"]
    assert hit["sha256"] == hashlib.sha256(original).hexdigest()


async def test_export_mbox_and_zip(corpus, gw_services):  # noqa: ANN001
    t = corpus.id
    # the originals as the pipeline archived them, by entry
    async with gw_services.db.session() as s:
        originals = {
            e.id: await gw_services.vault.read(s, t, e.object_id)
            for e in (await s.execute(select(ArchiveEntry))).scalars().all()
        }
    # zip of the whole tenant
    stats = export.ExportStats()
    data = b"".join([c async for c in export.export_zip(gw_services, t, Query(), stats)])
    assert stats.entries == 4 and stats.mismatched == 0 and stats.failed == 0
    zf = zipfile.ZipFile(io.BytesIO(data))
    assert zf.testzip() is None
    manifest = json.loads(zf.read("manifest.json"))
    assert manifest["entries"] == 4
    csv_rows = zf.read("manifest.csv").decode().splitlines()
    assert len(csv_rows) == 5 and csv_rows[0].startswith("file,entry_id")
    for row in manifest["files"]:
        body = zf.read(row["file"])
        assert body == originals[row["entry_id"]]
        assert hashlib.sha256(body).hexdigest() == row["sha256"] == row["sealed_sha256"]
        assert row["verified"] is True
        parsed = email.message_from_bytes(body, policy=default_policy)
        assert parsed["Subject"]
    # mbox of a search result, a From line in a body quoted (mboxrd)
    stats = export.ExportStats()
    q = Query(subject="quarterly")
    data = b"".join([c async for c in export.export_mbox(gw_services, t, q, stats)])
    assert stats.entries == 2
    path = Path(gw_services.settings.data_dir) / "out.mbox"
    path.write_bytes(data)
    box = mailbox.mbox(str(path))
    got = sorted(box.get_bytes(k) for k in box.keys())
    want = sorted(
        v.replace(b"\r\n", b"\n")
        for v in originals.values()
        if b"uarterly" in v.split(b"\r\n\r\n")[0]
    )
    assert len(got) == 2 and got == want
    assert all(m.get_from().startswith("alice@acme.example ") for m in box)
    box.close()


def test_mboxrd_quoting():
    q = export.MboxQuoter()
    out = q.feed(b"Subject: x\r\n\r\nFrom here\r\n>From there\r\nFro") + q.feed(b"m split\r\n")
    out += q.close()
    assert out == b"Subject: x\n\n>From here\n>>From there\n>From split\n\n"
    # a very long line is passed on in pieces, not held whole
    q = export.MboxQuoter()
    first = q.feed(b"x" * (export.MAX_CARRY * 3))
    assert len(first) >= export.MAX_CARRY * 2 and len(q.carry) <= 1
    assert q.close() == b"x\n\n"


def test_words_and_query_errors():
    assert index.words("Re: The [SECURE] Quarterly-Report ＡＢＣ of 2024") == [
        "secure",
        "quarterly",
        "report",
        "abc",
        "2024",
    ]
    with pytest.raises(QueryError):
        Query(decision="maybe")
    with pytest.raises(QueryError):
        Query(subject="a of")


async def test_mixed_decisions_and_count_cap(gw_services, tenant, monkeypatch):  # noqa: ANN001
    """An entry whose recipients were decided differently is found by each decision and
    by "mixed"; a broad query's count stops at the cap and says so."""
    from archive import search as search_mod

    async with gw_services.db.session() as s:
        (await s.get(Tenant, tenant.id)).archive_retention_days = 30  # the tenant's own
        for n, decisions in enumerate((["clear", "portal"], ["clear"], ["hold"])):
            raw = message(f"Mixed {n}")
            obj = await gw_services.vault.seal(s, tenant.id, raw, "raw")
            summary = index.summarise(
                email.message_from_bytes(raw, policy=default_policy), len(raw),
                hashlib.sha256(raw).hexdigest(), "alice@acme.example",
            )  # fmt: skip
            await index.record(
                gw_services, s, tenant_id=tenant.id, source="gateway", message_id=None,
                object_id=obj.id, summary=summary, decisions=decisions, received_at=1e9 + n,
            )  # fmt: skip
        await s.commit()
    async with gw_services.db.session() as s:
        rows = (await s.execute(select(ArchiveEntry))).scalars().all()
    assert rows and all(r.retain_until == r.received_at + 30 * 86400 for r in rows)
    subjects = lambda hits: sorted(h["subject"] for h in hits)  # noqa: E731
    assert subjects(await find(gw_services, tenant.id, decision="portal")) == ["Mixed 0"]
    assert subjects(await find(gw_services, tenant.id, decision="clear")) == ["Mixed 0", "Mixed 1"]
    assert subjects(await find(gw_services, tenant.id, decision="mixed")) == ["Mixed 0"]
    assert subjects(await find(gw_services, tenant.id, decision="hold")) == ["Mixed 2"]
    monkeypatch.setattr(search_mod, "COUNT_CAP", 2)
    async with gw_services.db.session() as s:
        page = await search(gw_services, s, tenant.id, Query(), limit=1)
    assert page.total == 2 and page.exact is False and page.as_json()["total_exact"] is False
    assert page.has_next and page.pages == 2  # the pages go on past the count
    async with gw_services.db.session() as s:
        last = await search(gw_services, s, tenant.id, Query(), page=3, limit=1)
    assert not last.has_next and last.pages == 3 and len(last.hits) == 1
    async with gw_services.db.session() as s:
        page = await search(gw_services, s, tenant.id, Query(decision="hold"), limit=1)
    assert page.total == 1 and page.exact is True


async def test_reindex_skips_a_shredded_original(gw_services, tenant):  # noqa: ANN001
    """Backfill: a processed message without an entry is indexed once; one whose original
    was already shredded is skipped, not an error."""
    from core.ids import queue_id
    from core.models import Message, MessageRecipient, SealedObject
    from gateway.pipeline.archive_record import reindex

    ids = []
    async with gw_services.db.session() as s:
        for n in range(2):
            raw = message(f"Backfill {n}", attachment=b"x" if n == 0 else None)
            obj = await gw_services.vault.seal(s, tenant.id, raw, "raw")
            mid = queue_id()
            s.add(
                Message(
                    id=mid, tenant_id=tenant.id, mail_from="alice@acme.example",
                    state="processed", disposition="clear", raw_object_id=obj.id,
                )
            )  # fmt: skip
            await s.flush()
            s.add(MessageRecipient(message_id=mid, rcpt="bcc@hidden.example",
                                   disposition="clear", state="done"))  # fmt: skip
            ids.append((mid, obj.id))
        await s.commit()
    async with gw_services.db.session() as s:
        (await s.get(SealedObject, ids[1][1])).wrapped_key = None  # crypto-shredded
        await s.commit()
    assert await reindex(gw_services, tenant.id) == 1
    assert await reindex(gw_services, tenant.id) == 0
    (hit,) = await find(gw_services, tenant.id, recipient="bcc@hidden.example")
    assert hit["subject"] == "Backfill 0" and hit["attachments"] == ["report.pdf"]
    assert hit["message_id"] == ids[0][0] and hit["bcc"] == ["bcc@hidden.example"]
