"""How fast ``sealmail key rotate --tenant`` re-wraps data keys, next to raw AES-GCM key
wrapping measured in the same run.

    .venv/bin/python bench/key_rotation.py [--objects 20000] [--pg postgresql://...]

A tenant with N sealed-object rows (rows only: rotation never reads the objects) on
SQLite, and on PostgreSQL when ``--pg`` names a server database to create a scratch
database in; prints data keys re-wrapped per second and the ratio to unwrap+wrap alone.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def raw_rate(n: int) -> float:
    from core.aead import new_key, unwrap, wrap

    old, new = new_key(), new_key()
    blobs = [(wrap(old, new_key(), b"aad%d" % i), b"aad%d" % i) for i in range(n)]
    start = time.perf_counter()
    for blob, aad in blobs:
        wrap(new, unwrap(old, blob, aad), aad)
    return n / (time.perf_counter() - start)


async def one(db_url: str, workdir: Path, n: int) -> tuple[float, int]:
    from core import rotation
    from core.accounts.tenants import create_tenant
    from core.config.loading import load_settings
    from core.db import migrate
    from core.models import SealedObject
    from core.rootkey.file_root import FileRootKey
    from core.services import Services

    (workdir / "keys").mkdir(parents=True, exist_ok=True)
    FileRootKey.create(workdir / "keys" / "root.key")
    settings = load_settings(
        path=None,
        env={},
        overrides={
            "data_dir": str(workdir),
            "database_url": db_url,
            "archive_url": f"file://{workdir}/archive",
            "root_key": f"file://{workdir}/keys/root.key",
        },
    )
    await asyncio.to_thread(migrate, db_url)  # alembic runs its own event loop
    svc = Services.open(settings)
    try:
        async with svc.db.session() as s:
            creds = await create_tenant(s, svc.keyring, "Bench", ["bench.example"])
            await s.commit()
        tid = creds.tenant_id
        for start in range(0, n, 5000):
            async with svc.db.session() as s:
                for i in range(start, min(n, start + 5000)):
                    oid = f"o_b{i:09d}"
                    _, wrapped, version = await svc.keyring.new_data_key(s, tid, oid)
                    s.add(
                        SealedObject(
                            id=oid,
                            tenant_id=tid,
                            kind="raw",
                            storage_name=oid,
                            wrapped_key=wrapped,
                            kek_version=version,
                        )
                    )
                await s.commit()
        report = await rotation.rotate_tenant(svc.db, svc.keyring, tid)
        return report.rewrapped / max(report.seconds, 1e-9), report.rewrapped
    finally:
        await svc.close()


async def pg_scratch(admin_url: str, create: bool, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url.replace("postgresql://", "postgres://", 1))
    try:
        if create:
            await conn.execute(f'CREATE DATABASE "{name}"')
        else:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objects", type=int, default=20000)
    ap.add_argument("--pg", default="", help="e.g. postgresql://postgres@127.0.0.1:5432/postgres")
    args = ap.parse_args()
    raw = raw_rate(min(args.objects, 20000))
    print(f"AES-256-GCM unwrap+wrap alone: {raw:,.0f} keys/s")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        rate, n = asyncio.run(one(url, Path(tmp) / "sqlite", args.objects))
        print(f"sqlite:     {n:,} data keys re-wrapped, {rate:,.0f}/s ({rate / raw:.1%} of raw)")
        if args.pg:
            name = "sealmail_bench_" + secrets.token_hex(4)
            asyncio.run(pg_scratch(args.pg, True, name))
            try:
                pg_url = args.pg.rsplit("/", 1)[0] + "/" + name
                rate, n = asyncio.run(one(pg_url, Path(tmp) / "pg", args.objects))
                share = rate / raw
                print(f"postgresql: {n:,} data keys re-wrapped, {rate:,.0f}/s ({share:.1%} of raw)")
            finally:
                asyncio.run(pg_scratch(args.pg, False, name))


if __name__ == "__main__":
    main()
