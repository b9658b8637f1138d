"""The retention sweep and the integrity check, next to baselines measured in the same run.

    .venv/bin/python bench/archive_retention.py [--entries 300] [--size 100000] [--verify-mb 200]

Sweep: ``--entries`` archived messages of ``--size`` bytes (original + sealed summary each)
past their retention on SQLite and the local store; ``archive.sweep.sweep`` shreds them all
(keys destroyed and committed, then objects deleted, audited). Baseline: deleting the same
number of files of that size (unlink + directory fsync, what the store's delete costs).
Prints entries/s and the ratio.

Verify: one ``--verify-mb`` MB archived message read back by ``archive.verify.verify``
(ciphertext SHA-256, GCM authentication of every chunk, plaintext SHA-256). Baseline: raw
AES-256-GCM decryption of the same bytes in 64 KiB chunks from memory, no I/O. Prints MB/s
and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

from archive import index  # noqa: E402
from archive.sweep import sweep  # noqa: E402
from archive.verify import verify  # noqa: E402
from core.accounts.tenants import create_tenant
from core.config.loading import load_settings
from core.db import migrate  # noqa: E402
from core.rootkey.file_root import FileRootKey
from core.services import Services  # noqa: E402

MiB = 1024 * 1024


def _settings(root: Path):  # noqa: ANN202
    data = root / "var"
    (data / "keys").mkdir(parents=True)
    FileRootKey.create(data / "keys" / "root.key")
    db = f"sqlite:///{data}/sealmail.db"
    migrate(db)
    return load_settings(
        path=None,
        env={},
        overrides={
            "data_dir": str(data),
            "database_url": db,
            "archive_url": f"file://{data}/archive",
            "root_key": f"file://{data}/keys/root.key",
        },
    )


async def _archive(svc: Services, tid: str, data: bytes, at: float) -> None:
    async with svc.db.session() as s:
        obj = await svc.vault.seal(s, tid, data, "raw")
        entry = await index.record(
            svc, s, tenant_id=tid, source=index.SOURCE_GATEWAY, message_id=None,
            object_id=obj.id, decisions=["portal"], received_at=at,
            summary=index.Summary(subject="bench", size=len(data),
                                  sha256=hashlib.sha256(data).hexdigest()),
        )  # fmt: skip
        entry.retain_until = at
        await s.commit()


async def bench_sweep(root: Path, settings, entries: int, size: int) -> tuple[float, float]:  # noqa: ANN001
    svc = Services.open(settings)
    try:
        async with svc.db.session() as s:
            tid = (await create_tenant(s, svc.keyring, "Bench", ["b.example"])).tenant_id
            await s.commit()
        data = os.urandom(size)
        for _ in range(entries):
            await _archive(svc, tid, data, time.time() - 86400)
        started = time.perf_counter()
        report = await sweep(svc)
        took = time.perf_counter() - started
        assert report.entries_shredded == entries and not report.problems, report
    finally:
        await svc.close()
    # baseline: delete as many files of that size, durably
    base = root / "baseline"
    base.mkdir()
    for i in range(entries * 2):
        (base / f"f{i}").write_bytes(data)
    fd = os.open(base, os.O_RDONLY)
    started = time.perf_counter()
    for i in range(entries * 2):  # two objects per entry
        os.unlink(base / f"f{i}")
        os.fsync(fd)
    base_took = time.perf_counter() - started
    os.close(fd)
    return entries / took, entries / base_took


async def bench_verify(settings, mb: int) -> tuple[float, float]:  # noqa: ANN001
    svc = Services.open(settings)
    data = os.urandom(MiB) * mb
    try:
        async with svc.db.session() as s:
            tid = (await create_tenant(s, svc.keyring, "Big", ["big.example"])).tenant_id
            await s.commit()
        await _archive(svc, tid, data, time.time() + 86400)
        started = time.perf_counter()
        report = await verify(svc)
        took = time.perf_counter() - started
        assert not report.damaged and report.bytes >= len(data), report
    finally:
        await svc.close()
    key = AESGCM.generate_key(bit_length=256)
    aes, nonce, chunk = AESGCM(key), os.urandom(12), 64 * 1024
    sealed = [aes.encrypt(nonce, data[i : i + chunk], b"") for i in range(0, len(data), chunk)]
    started = time.perf_counter()
    for piece in sealed:
        aes.decrypt(nonce, piece, b"")
    base_took = time.perf_counter() - started
    return mb / took, mb / base_took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--entries", type=int, default=300)
    ap.add_argument("--size", type=int, default=100_000)
    ap.add_argument("--verify-mb", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "s"
        rate, base = asyncio.run(bench_sweep(root, _settings(root), args.entries, args.size))
        print(
            f"sweep: {rate:,.0f} entries/s ({args.entries} x {args.size // 1000} KB, SQLite, "
            f"local store); baseline durable file deletes: {base:,.0f} entries/s "
            f"(2 files each); ratio {rate / base:.2f}"
        )
        rate, base = asyncio.run(bench_verify(_settings(Path(tmp) / "v"), args.verify_mb))
        print(
            f"verify: {rate:,.0f} MB/s ({args.verify_mb} MB message); baseline raw "
            f"AES-256-GCM decrypt in memory: {base:,.0f} MB/s; ratio {rate / base:.2f}"
        )


if __name__ == "__main__":
    main()
