"""Archive throughput: MB/s archived (sealed + stored + row committed) next to baselines
measured in the same run.

    .venv/bin/python bench/archive_throughput.py [--rounds 3] [--small 300] [--large 6]

Targets: the local disk (a file:// archive, SQLite) and an S3 endpoint (moto's server on
loopback, started here, a fresh bucket). Messages of 100 KB (``--small`` of them) and
25 MB (``--large``), one at a time through ``Vault.seal`` and a commit, as the gateway
archives them.

Baselines, each on the same bytes in the same run:
- raw AES-256-GCM (cryptography's AESGCM) over the same 64 KiB chunks the vault seals;
- a raw store write of the same size: a durable local write (temp file, fsync, rename,
  directory fsync) for the disk, one boto3 ``put_object`` (or ``upload_fileobj``, which
  goes multipart, for 25 MB) for S3.

Prints the median of ``--rounds`` rounds per figure and the ratios (archive / baseline).
No asserts: PERFORMANCE.md's target is archive ≥ 50 % of the raw store write.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KB, MB = 1000, 1000 * 1000
CHUNK = 64 * 1024


def aes_mb_s(total: int) -> float:
    """Raw AES-256-GCM over ``total`` bytes in the vault's chunk size."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    chunk = os.urandom(CHUNK)
    n = max(1, total // CHUNK)
    nonce = os.urandom(12)
    start = time.perf_counter()
    for _ in range(n):
        aead.encrypt(nonce, chunk, b"ad")
    return n * CHUNK / MB / (time.perf_counter() - start)


def local_raw_mb_s(root: Path, size: int, count: int) -> float:
    """A durable local write per message: temp file, fsync, rename, directory fsync."""
    from core.storage.local import LocalStore

    store = LocalStore(root / f"raw-{secrets.token_hex(4)}")
    store.create()
    data = os.urandom(size)
    start = time.perf_counter()
    for _ in range(count):
        store.put(f"r_{secrets.token_hex(8)}", [data])
    return size * count / MB / (time.perf_counter() - start)


def s3_raw_mb_s(endpoint: str, bucket: str, size: int, count: int) -> float:
    """boto3 alone: put_object, or upload_fileobj (multipart, 8 MiB parts) above 8 MiB."""
    import boto3
    from boto3.s3.transfer import TransferConfig

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    data = os.urandom(size)
    cfg = TransferConfig(multipart_chunksize=8 * 1024 * 1024, max_concurrency=1)
    client.put_object(Bucket=bucket, Key="raw/warm-up", Body=b"x")  # connection open
    start = time.perf_counter()
    for _ in range(count):
        key = f"raw/{secrets.token_hex(8)}"
        if size > 8 * 1024 * 1024:
            client.upload_fileobj(io.BytesIO(data), bucket, key, Config=cfg)
        else:
            client.put_object(Bucket=bucket, Key=key, Body=data)
    return size * count / MB / (time.perf_counter() - start)


def workdir(root: Path, overrides: dict[str, str]) -> dict[str, str]:
    """A fresh root key and migrated SQLite database; the settings for them."""
    from core.db import migrate
    from core.rootkey.file_root import FileRootKey

    work = root / f"w-{secrets.token_hex(4)}"
    (work / "keys").mkdir(parents=True)
    FileRootKey.create(work / "keys" / "root.key")
    db = f"sqlite:///{work}/sealmail.db"
    migrate(db)
    return {
        "data_dir": str(work),
        "database_url": db,
        "archive_url": f"file://{work}/archive",
        "root_key": f"file://{work}/keys/root.key",
        **overrides,
    }


async def archive_mb_s(values: dict[str, str], size: int, count: int) -> float:
    """``count`` messages of ``size`` through Vault.seal + commit, one after the other."""
    from core.accounts.tenants import create_tenant
    from core.config.loading import load_settings
    from core.services import Services

    svc = Services.open(load_settings(path=None, env={}, overrides=values))
    try:
        svc.verify_store()
        async with svc.db.session() as s:
            creds = await create_tenant(s, svc.keyring, "Bench", ["bench.example"])
            await s.commit()
        tid = creds.tenant_id
        data = os.urandom(size)
        pieces = [data[i : i + CHUNK] for i in range(0, size, CHUNK)]
        async with svc.db.session() as s:  # warm the KEK cache and the connection
            await svc.vault.seal(s, tid, b"warm-up", "raw")
            await s.commit()
        start = time.perf_counter()
        for _ in range(count):
            async with svc.db.session() as s:
                await svc.vault.seal(s, tid, iter(pieces), "raw")
                await s.commit()
        return size * count / MB / (time.perf_counter() - start)
    finally:
        await svc.close()


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--small", type=int, default=300, help="100 KB messages per round")
    p.add_argument("--large", type=int, default=6, help="25 MB messages per round")
    args = p.parse_args()

    from tests.helpers.moto_server import MotoServer

    for k, v in MotoServer.ENV.items():
        os.environ.setdefault(k, v)
    import boto3

    sizes = [("100 KB", 100 * KB, args.small), ("25 MB", 25 * MB, args.large)]
    rows: list[tuple[str, str, float, float, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="sm-bench-") as tmp, MotoServer() as moto:
        root = Path(tmp)
        client = boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1")
        for target in ("local", "s3"):
            for label, size, count in sizes:
                aes, raw, arch = [], [], []
                for _ in range(args.rounds):
                    aes.append(aes_mb_s(size * count))
                    if target == "local":
                        raw.append(local_raw_mb_s(root, size, count))
                        overrides: dict[str, str] = {}
                    else:
                        bucket = f"b-{secrets.token_hex(6)}"
                        client.create_bucket(Bucket=bucket)
                        raw.append(s3_raw_mb_s(moto.endpoint, bucket, size, count))
                        overrides = {
                            "archive_url": f"s3://{bucket}/archive",
                            "s3_endpoint_url": moto.endpoint,
                        }
                    arch.append(asyncio.run(archive_mb_s(workdir(root, overrides), size, count)))
                    if target == "s3":
                        moto.reset()  # free the server's memory between rounds
                a, r, m = median(aes), median(raw), median(arch)
                rows.append((target, label, m, m * MB / size, r, a))
                print(
                    f"  {target:5} {label:>6}: archived {m:8.1f} MB/s ({m * MB / size:7.1f} msg/s)"
                    f"  raw store {r:8.1f} MB/s  AES-GCM {a:8.1f} MB/s",
                    flush=True,
                )

    print()
    print(f"archive throughput, median of {args.rounds} rounds, one message at a time")
    print(
        f"{'target':6} {'size':>6} | {'archived MB/s':>13} {'msg/s':>8} | "
        f"{'raw write MB/s':>14} {'ratio':>6} | {'AES-GCM MB/s':>12} {'ratio':>7}"
    )
    for target, label, m, rate, r, a in rows:
        print(
            f"{target:6} {label:>6} | {m:13.1f} {rate:8.1f} | {r:14.1f} {m / r:6.0%} | "
            f"{a:12.0f} {m / a:7.2%}"
        )


if __name__ == "__main__":
    main()
