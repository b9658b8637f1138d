"""A large journal report (issue 15, flat memory) is unwrapped and archived from the
stream: the archived original, its meta, its archive entry and the duplicate count are
what the whole-message path makes of the same report; a malformed one is archived whole;
the report's original is never read whole."""

from __future__ import annotations

import base64
import dataclasses
import json
import os

import pytest
from sqlalchemy import select

from archive.index import Summary
from archive.models import ArchiveEntry
from core.hashing import sha256_hex
from core.models import Message
from gateway.pipeline import runner
from gateway.pipeline.runner import process_pending
from tests.gateway.conftest import whole_reads
from tests.gateway.pipeline.test_journal import (
    entries,
    journal_report,
    opened,
    original_message,
    send_report,
)


async def _archived(gw_services, tenant, entry) -> tuple[bytes, dict, dict, bytes]:  # noqa: ANN001
    """The archived object, its meta, its archive summary and the stored report."""
    archived, meta = await opened(gw_services, tenant.id, entry)
    meta.pop("queue_id")
    async with gw_services.db.session() as s:
        row = (
            await s.execute(select(ArchiveEntry).where(ArchiveEntry.object_id == entry.object_id))
        ).scalar_one()
        summary = Summary.from_json(await gw_services.vault.read(s, tenant.id, row.meta_object_id))
        message = await s.get(Message, entry.message_id)
        stored = await gw_services.vault.read(s, tenant.id, message.raw_object_id)
    return archived, meta, dataclasses.asdict(summary), stored


@pytest.mark.parametrize("kind", ["binary", "base64", "malformed"])
async def test_large_report_archived_as_the_whole_path_archives_it(
    gateway, tenant, gw_services, sink, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    body = base64.encodebytes(os.urandom(40_000)).replace(b"\n", b"\r\n")
    seen: set[str] = set()
    results = []
    for tag, threshold in (("a", 1 << 40), ("b", 1000)):
        monkeypatch.setattr(runner, "LARGE", threshold)
        mid = f"<orig-{tag}@acme.example>"
        original = original_message(mid, body=body)
        report = journal_report(original, cte="base64" if kind == "base64" else "binary")
        report = report.replace(b"<orig-1@acme.example>", mid.encode())
        if kind == "malformed":
            report = report.replace(b"message/rfc822", b"application/octet-stream")
        await send_report(gateway, tenant, report)
        assert await process_pending(gw_services) == 1
        (entry,) = [e for e in await entries(gw_services) if e.id not in seen]
        seen.add(entry.id)
        assert entry.malformed == (kind == "malformed")
        archived, meta, summary, stored = await _archived(gw_services, tenant, entry)
        assert archived == (stored if kind == "malformed" else original)
        assert (meta["sha256"], meta["size"]) == (sha256_hex(archived), len(archived))
        assert (summary["sha256"], summary["size"]) == (meta["sha256"], meta["size"])
        for d in (meta, summary):
            d.pop("sha256"), d.pop("size")
        results.append(json.dumps([meta, summary]).replace(f"orig-{tag}", "orig-X"))
    whole, large = results
    assert large == whole


async def test_large_duplicate_report_counted_once(
    gateway, tenant, gw_services, sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "LARGE", 1000)
    read_whole = whole_reads(gw_services, monkeypatch)
    report = journal_report(original_message(body=b"x" * 5000 + b"\r\n"))
    for _ in range(2):
        await send_report(gateway, tenant, report)
        assert await process_pending(gw_services) == 1
    (entry,) = await entries(gw_services)
    assert entry.duplicates == 1
    async with gw_services.db.session() as s:
        raws = [m.raw_object_id for m in (await s.execute(select(Message))).scalars()]
    assert not set(raws) & set(read_whole)
    archived, meta = await opened(gw_services, tenant.id, entry)
    assert archived == original_message(body=b"x" * 5000 + b"\r\n")
    assert json.loads(json.dumps(meta))["size"] == len(archived)


async def test_reindex_of_a_journal_entry_streams_its_archived_original(
    gateway, tenant, gw_services, sink
) -> None:
    """``archive reindex`` makes a journal entry's archive entry from the archived original
    and the report's fields in its meta (the report is not read): the same summary."""
    from sqlalchemy import delete

    from gateway.pipeline.archive_record import reindex

    await send_report(gateway, tenant, journal_report(original_message()))
    assert await process_pending(gw_services) == 1
    (entry,) = await entries(gw_services)
    _, _, before, _ = await _archived(gw_services, tenant, entry)
    async with gw_services.db.session() as s:
        await s.execute(delete(ArchiveEntry))
        await s.commit()
    assert await reindex(gw_services, tenant.id) == 1
    _, _, after, _ = await _archived(gw_services, tenant, entry)
    assert after == before
    assert "eve@hidden.example" in after["bcc"] and after["sha256"]
