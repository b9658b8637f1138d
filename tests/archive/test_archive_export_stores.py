"""Search and export on each object store (local disk and moto's S3 on loopback, through the
``services`` fixture of tests/archive/conftest.py) and each database: entries recorded as the
pipeline records them, then found, exported as zip and mbox, digests checked."""

from __future__ import annotations

import email
import hashlib
import io
import json
import zipfile
from email.policy import default as default_policy

from archive import export, index
from archive.search import Query, search
from core.accounts.tenants import create_tenant


def original(n: int) -> bytes:
    return (
        f"From: Ann <ann@store.example>\r\nTo: rcpt{n}@partner.example\r\n"
        f"Subject: Ledger {n} {'odd' if n % 2 else 'even'}\r\n"
        "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain\r\n\r\nline {n}\r\nFrom the ledger\r\n"
    ).encode() + bytes(range(256)) * 40  # some bytes that are not text


async def test_search_and_export_on_each_store(services):  # noqa: ANN001
    async with services.db.session() as s:
        creds = await create_tenant(s, services.keyring, "Store", ["store.example"])
        await s.commit()
    tenant_id = creds.tenant_id
    originals: dict[str, bytes] = {}
    async with services.db.session() as s:
        for n in range(5):
            raw = original(n)
            obj = await services.vault.seal(s, tenant_id, raw, "raw")
            msg = email.message_from_bytes(raw, policy=default_policy)
            digest = hashlib.sha256(raw).hexdigest()
            rcpts = [f"rcpt{n}@partner.example"]
            summary = index.summarise(msg, len(raw), digest, "ann@store.example", rcpts)
            entry = await index.record(
                services, s, tenant_id=tenant_id, source="gateway", message_id=None,
                object_id=obj.id, summary=summary, decisions=["clear"],
                received_at=1_700_000_000.0 + n,
            )  # fmt: skip
            originals[entry.id] = raw
        await s.commit()
    async with services.db.session() as s:
        page = await search(services, s, tenant_id, Query(subject="ledger odd"))
    assert [h.meta.subject for h in page.hits] == ["Ledger 3 odd", "Ledger 1 odd"]

    stats = export.ExportStats()
    data = b"".join([c async for c in export.export_zip(services, tenant_id, Query(), stats)])
    assert (stats.entries, stats.mismatched, stats.failed) == (5, 0, 0)
    zf = zipfile.ZipFile(io.BytesIO(data))
    manifest = json.loads(zf.read("manifest.json"))
    assert [row["entry_id"] for row in manifest["files"]] == list(originals)[::-1]
    for row in manifest["files"]:
        body = zf.read(row["file"])
        assert body == originals[row["entry_id"]]
        assert row["verified"] and row["sha256"] == hashlib.sha256(body).hexdigest()

    q = Query(recipient="rcpt2@partner.example")
    mbox = b"".join([c async for c in export.export_mbox(services, tenant_id, q)])
    assert mbox.startswith(b"From ann@store.example ") and mbox.count(b"\nFrom ") == 0
    assert b"\n>From the ledger\n" in mbox
