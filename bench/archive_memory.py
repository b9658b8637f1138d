"""Peak memory of archiving (indexing) and exporting one large message.

    .venv/bin/python bench/archive_memory.py [--mb 200] [--json]

In a fresh process (SQLite, local store): a message of the given size (a text part and a
base64 attachment, generated piece by piece) is sealed as intake seals it (SealWriter),
recorded as processed, indexed by ``reindex`` (which streams the original), then exported as
a zip (.eml + manifest) and as an mbox to files; the zip member's SHA-256 is read back in
chunks and compared with the manifest and the digest sealed in the summary. Prints the
peak RSS (VmHWM) before and after, and the time of each step.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHUNK = 57 * 1024  # base64 of this is whole 76-char lines


def reset_peak() -> None:
    """Start VmHWM again from the current RSS (Linux: 5 > /proc/self/clear_refs)."""
    Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def message(size: int) -> Iterator[bytes]:
    yield (
        b"From: Big Sender <big@acme.example>\r\nTo: archive-test@partner.example\r\n"
        b"Subject: Large drawings\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="big"\r\n\r\n'
        b"--big\r\nContent-Type: text/plain\r\n\r\nThe drawings.\r\nFrom the office\r\n"
        b"--big\r\nContent-Type: application/octet-stream\r\n"
        b'Content-Disposition: attachment; filename="drawings.bin"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n"
    )
    sent, n = 0, 0
    while sent < size:
        raw = hashlib.shake_256(n.to_bytes(8, "big")).digest(CHUNK)
        text = base64.encodebytes(raw[: CHUNK - CHUNK % 57]).replace(b"\n", b"\r\n")
        yield text
        sent += len(text)
        n += 1
    yield b"--big--\r\n"


async def run(work: Path, size_mb: int) -> dict:
    from sqlalchemy import select

    from archive import export
    from archive.models import ArchiveEntry
    from archive.search import Query
    from core.accounts.tenants import create_tenant
    from core.config.loading import load_settings
    from core.db import migrate
    from core.ids import queue_id
    from core.models import Message, MessageRecipient
    from core.rootkey.file_root import FileRootKey
    from core.services import Services
    from gateway.pipeline.archive_record import reindex

    (work / "keys").mkdir()
    FileRootKey.create(work / "keys" / "root.key")
    settings = load_settings(path=None, env={}, overrides={
        "data_dir": str(work), "database_url": f"sqlite:///{work}/db.sqlite",
        "archive_url": f"file://{work}/archive", "root_key": f"file://{work}/keys/root.key",
    })  # fmt: skip
    await asyncio.to_thread(migrate, settings.database_url)
    services = Services.open(settings)
    out: dict = {"mb": size_mb}
    try:
        async with services.db.session() as s:
            tenant_id = (
                await create_tenant(s, services.keyring, "Big", ["acme.example"])
            ).tenant_id  # noqa: E501
            await s.commit()
        out["rss_setup_peak_mb"] = peak_rss_mb()  # imports: Argon2's 64 MiB at import
        reset_peak()
        out["rss_before_mb"] = peak_rss_mb()
        t = time.perf_counter()
        digest, size = hashlib.sha256(), 0
        async with services.db.session() as s:
            writer = await services.vault.writer(s, tenant_id, "raw")
            for piece in message(size_mb * 1024 * 1024):
                digest.update(piece)
                size += len(piece)
                await writer.write(piece)
            row = await writer.close()
            s.add(row)
            mid = queue_id()
            s.add(
                Message(
                    id=mid, tenant_id=tenant_id, mail_from="big@acme.example", size=size,
                    state="processed", disposition="clear", raw_object_id=row.id,
                )
            )  # fmt: skip
            await s.flush()
            s.add(MessageRecipient(message_id=mid, rcpt="archive-test@partner.example",
                                   disposition="clear", state="done"))  # fmt: skip
            await s.commit()
        out["seal_s"] = time.perf_counter() - t
        t = time.perf_counter()
        out["indexed"] = await reindex(services, tenant_id)
        out["index_s"] = time.perf_counter() - t
        async with services.db.session() as s:
            entry = (await s.execute(select(ArchiveEntry))).scalar_one()
        out["has_attachment"] = entry.has_attachment
        for fmt in ("zip", "mbox"):
            t = time.perf_counter()
            stats = export.ExportStats()
            path = work / f"export.{fmt}"
            with path.open("wb") as fh:
                async for chunk in export.exporter(fmt)(services, tenant_id, Query(), stats):
                    fh.write(chunk)
            out[f"{fmt}_s"] = time.perf_counter() - t
            out[f"{fmt}_bytes"] = path.stat().st_size
            out[f"{fmt}_mismatched"] = stats.mismatched
        with zipfile.ZipFile(work / "export.zip") as zf:
            manifest = json.loads(zf.read("manifest.json"))
            (row_,) = manifest["files"]
            check = hashlib.sha256()
            with zf.open(row_["file"]) as member:
                while block := member.read(1 << 20):
                    check.update(block)
        out["digest_ok"] = (
            check.hexdigest() == row_["sha256"] == row_["sealed_sha256"] == digest.hexdigest()
        )
        out["original_bytes"] = size
    finally:
        await services.close()
    out["rss_peak_mb"] = peak_rss_mb()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="sealmail-big-") as tmp:
        result = asyncio.run(run(Path(tmp), args.mb))
    if args.json:
        print(json.dumps(result))
        return
    for k, v in result.items():
        print(f"{k:18} {v:.2f}" if isinstance(v, float) else f"{k:18} {v}")


if __name__ == "__main__":
    main()
