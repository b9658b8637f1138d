"""``sealmail archive verify`` on a 200 MB archived message stays under 100 MB peak RSS
(measured in the CLI process itself, a subprocess; SQLite and the local store).

The peak is the process's whole resident memory (VmHWM) over the command's run, the
interpreter's start-up included (printed on its own as well)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from archive import index
from core.accounts.tenants import create_tenant
from core.config.loading import load_settings
from core.db import migrate
from core.rootkey.file_root import FileRootKey
from core.services import Services

SIZE = 200 * 1024 * 1024
PIECE = 1024 * 1024
LIMIT_KB = 100 * 1024

CHILD = """
import re, runpy, sys
import sealmail.cli.main

def hwm_kb():
    return int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1))

print("STARTUP_KB", hwm_kb(), file=sys.stderr)
sys.argv = ["sealmail", "archive", "verify", "--json", "--config", sys.argv[1]]
try:
    runpy.run_module("sealmail", run_name="__main__")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print("MAXRSS_KB", hwm_kb(), file=sys.stderr)
sys.exit(code)
"""


def _pieces(digest: hashlib._Hash) -> Iterator[bytes]:
    block = os.urandom(PIECE)
    for i in range(SIZE // PIECE):
        piece = block[i % 251 :] + block[: i % 251]  # not one repeated block
        digest.update(piece)
        yield piece


async def _archive_big(config: Path) -> str:
    svc = Services.open(load_settings(config, env={}))
    try:
        async with svc.db.session() as s:
            creds = await create_tenant(s, svc.keyring, "Big", ["big.example"])
            digest = hashlib.sha256()
            obj = await svc.vault.seal(s, creds.tenant_id, _pieces(digest), "raw")
            await index.record(
                svc,
                s,
                tenant_id=creds.tenant_id,
                source=index.SOURCE_GATEWAY,
                message_id=None,
                object_id=obj.id,
                summary=index.Summary(subject="big", size=SIZE, sha256=digest.hexdigest()),
                decisions=["portal"],
            )
            await s.commit()
        return obj.id
    finally:
        await svc.close()


def test_verify_200mb_under_100mb_rss(tmp_path: Path) -> None:
    data = tmp_path / "var"
    (data / "keys").mkdir(parents=True)
    FileRootKey.create(data / "keys" / "root.key")
    db = f"sqlite:///{data}/sealmail.db"
    migrate(db)
    config = tmp_path / "sealmail.toml"
    config.write_text(
        f'data_dir = "{data}"\ndatabase_url = "{db}"\n'
        f'archive_url = "file://{data}/archive"\nroot_key = "file://{data}/keys/root.key"\n'
    )
    object_id = asyncio.run(_archive_big(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALMAIL_")}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(config)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        stdin=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["checked"] == 2 and report["damaged"] == []
    assert report["bytes"] >= SIZE
    rss_kb = int(proc.stderr.split("MAXRSS_KB")[1].split()[0])
    startup_kb = int(proc.stderr.split("STARTUP_KB")[1].split()[0])
    print(
        f"verify of {SIZE >> 20} MB: peak RSS {rss_kb / 1024:.1f} MB "
        f"(of which start-up {startup_kb / 1024:.1f} MB)"
    )
    assert rss_kb < LIMIT_KB, f"peak RSS {rss_kb / 1024:.1f} MB"
    assert object_id
