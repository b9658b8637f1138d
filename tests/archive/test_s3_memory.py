"""Issue 5 "done when", on S3 and with the root key in KMS: a 200 MB message is archived
(sealed into an Object Lock bucket on moto's S3, indexed), checked by ``sealmail archive
verify`` and exported by ``sealmail archive export`` (zip) with peak memory under 100 MB.
Each step runs in a process of its own: the archiving one resets its peak RSS (VmHWM)
after start-up, so imports do not count; verify and export are the CLI process itself,
measured whole (interpreter, boto3 and its service models included)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from core.db import migrate
from tests.core.test_keys_kms import new_kms_key
from tests.helpers.moto_server import MotoServer
from tests.helpers.stores import new_bucket, s3_client

ROOT = Path(__file__).resolve().parents[2]
SIZE = 200 * 1024 * 1024
LIMIT_MB = 100

ARCHIVE = """
import asyncio, hashlib, json, os, re, sys
sys.path.insert(0, sys.argv[2])
from archive import index
from core.services import Services
from core.accounts.tenants import create_tenant
from core.config.loading import load_settings

def hwm_kb():
    return int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1))

SIZE, PIECE = 200 * 1024 * 1024, 1024 * 1024
digest = hashlib.sha256()
block = os.urandom(PIECE)

def pieces():
    for i in range(SIZE // PIECE):
        piece = block[i % 251:] + block[: i % 251]
        digest.update(piece)
        yield piece

async def main():
    svc = Services.open(load_settings(sys.argv[1], env={}))
    try:
        await asyncio.to_thread(svc.verify_store)
        async with svc.db.session() as s:
            creds = await create_tenant(s, svc.keyring, "Big", ["big.example"])
            await s.commit()
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        base = hwm_kb()
        async with svc.db.session() as s:
            obj = await svc.vault.seal(s, creds.tenant_id, pieces(), "raw")
            await index.record(
                svc, s, tenant_id=creds.tenant_id, source=index.SOURCE_GATEWAY,
                message_id=None, object_id=obj.id,
                summary=index.Summary(subject="big", size=SIZE, sha256=digest.hexdigest()),
                decisions=["portal"],
            )
            await s.commit()
        print(json.dumps({"growth_mb": (hwm_kb() - base) / 1024, "object": obj.id}))
    finally:
        await svc.close()

asyncio.run(main())
"""

CLI = """
import re, runpy, sys
sys.path.insert(0, sys.argv[2])
import sealmail.cli.main

def hwm_kb():
    return int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1))

print("STARTUP_KB", hwm_kb(), file=sys.stderr)
sys.argv = ["sealmail", *sys.argv[3:], "--json", "--config", sys.argv[1]]
try:
    runpy.run_module("sealmail", run_name="__main__")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print("MAXRSS_KB", hwm_kb(), file=sys.stderr)
sys.exit(code)
"""


def test_200_mb_message_on_s3_with_a_kms_root_in_bounded_memory(
    tmp_path: Path, aws_env: None
) -> None:
    with MotoServer() as moto:  # its own server: the 200 MB leave with it
        bucket = new_bucket(moto.endpoint, lock=True)
        arn = new_kms_key(moto.endpoint)
        data = tmp_path / "var"
        db = f"sqlite:///{data}/sealmail.db"
        migrate(db)
        config = tmp_path / "sealmail.toml"
        config.write_text(
            f'data_dir = "{data}"\ndatabase_url = "{db}"\n'
            f'archive_url = "s3://{bucket}/big"\ns3_endpoint_url = "{moto.endpoint}"\n'
            f's3_object_lock = "compliance"\n'
            f'root_key = "aws-kms://{arn}"\nkms_endpoint_url = "{moto.endpoint}"\n'
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEALMAIL_")}
        env.update(MotoServer.ENV)
        run = {"capture_output": True, "text": True, "timeout": 300, "env": env, "cwd": tmp_path}
        init = subprocess.run(
            [sys.executable, "-m", "sealmail", "--config", str(config), "migrate"], **run
        )
        assert init.returncode == 0, init.stderr
        assert "derivation secret in the database" in init.stdout
        stored = subprocess.run([sys.executable, "-c", ARCHIVE, str(config), str(ROOT)], **run)
        assert stored.returncode == 0, stored.stderr
        archived = json.loads(stored.stdout)
        # in the bucket, under Object Lock, as parts of one object of at least 200 MB
        client = s3_client(moto.endpoint)
        head = client.head_object(Bucket=bucket, Key=f"big/{archived['object']}")
        assert head["ContentLength"] >= SIZE and head["ObjectLockMode"] == "COMPLIANCE"
        peaks: dict[str, float] = {}
        for what, args in (
            ("verify", ["archive", "verify"]),
            ("export", ["archive", "export", "Big", "--format", "zip", "--output", "big.zip"]),
        ):
            proc = subprocess.run(
                [sys.executable, "-c", CLI, str(config), str(ROOT), *args],
                stdin=subprocess.DEVNULL,
                **run,
            )
            assert proc.returncode == 0, proc.stderr
            if what == "verify":
                report = json.loads(proc.stdout)
                assert report["damaged"] == [] and report["bytes"] >= SIZE
            peaks[what] = int(proc.stderr.split("MAXRSS_KB")[1].split()[0]) / 1024
        assert (tmp_path / "big.zip").stat().st_size >= SIZE
        print(
            f"S3 + KMS, 200 MB: archiving grew peak RSS by {archived['growth_mb']:.1f} MB; "
            f"peak RSS of verify {peaks['verify']:.1f} MB, of export {peaks['export']:.1f} MB"
        )
        assert archived["growth_mb"] < LIMIT_MB, archived
        assert peaks["verify"] < LIMIT_MB, peaks
        assert peaks["export"] < LIMIT_MB, peaks
