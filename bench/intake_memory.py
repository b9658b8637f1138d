"""Peak memory of the gateway's intake against message size.

    .venv/bin/python bench/intake_memory.py [--sizes 1 50 100]

For each size (MB) a fresh gateway process (SQLite, local store, no worker) receives one
message of that size over SMTP; the process reports its peak RSS (VmHWM) after the 250.
DATA is sealed while it streams in, so the peak should not grow with the message size.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import smtplib
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SENDER = "bench@bench.example"


def peak_rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


async def serve(workdir: str) -> None:
    from bench.smtp_throughput import _write_cert
    from core.accounts.tenants import create_tenant
    from core.config.loading import load_settings
    from core.db import migrate
    from core.rootkey.file_root import FileRootKey
    from core.services import Services
    from gateway.intake.handler import build_gateway

    base = Path(workdir)
    FileRootKey.create(base / "keys" / "root.key")
    cert, key = _write_cert(base / "tls")
    settings = load_settings(
        path=None,
        env={},
        overrides={
            "data_dir": str(base),
            "smtp_listen": "127.0.0.1:0",
            "smtp_tls_cert": cert,
            "smtp_tls_key": key,
            "relay": "127.0.0.1:9",
            "relay_tls": "none",
        },
    )
    await asyncio.to_thread(migrate, settings.database_url)
    services = Services.open(settings)
    async with services.db.session() as s:
        await create_tenant(
            s, services.keyring, "Bench", ["bench.example"], networks=[("127.0.0.0/8", True)]
        )
        await s.commit()
    gateway = build_gateway(services)
    _, port = await gateway.start()
    print(f"READY {port} {peak_rss_kb()}", flush=True)
    loop = asyncio.get_running_loop()
    while await loop.run_in_executor(None, sys.stdin.readline):
        print(f"PEAK {peak_rss_kb()}", flush=True)
    await gateway.stop(5)
    await services.close()


def message(size_mb: int) -> bytes:
    line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor\r\n"
    head = (
        f"From: <{SENDER}>\r\nTo: <r@partner.example>\r\nSubject: big\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n"
    ).encode()
    return head + line * (size_mb * 1024 * 1024 // len(line))


def measure(size_mb: int) -> tuple[int, int]:
    """(peak RSS in KB before, after receiving one message of ``size_mb`` MB)."""
    with tempfile.TemporaryDirectory(prefix="sealmail-mem-") as tmp:
        proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", tmp],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
            text=True,
            start_new_session=True,  # its own group: stopped with whatever it started
        )
        try:
            assert proc.stdin and proc.stdout
            ready = proc.stdout.readline().split()
            port, before = int(ready[1]), int(ready[2])
            data = message(size_mb)
            with smtplib.SMTP("127.0.0.1", port, timeout=300) as c:
                c.sendmail(SENDER, ["r@partner.example"], data)
            del data
            proc.stdin.write("peak\n")
            proc.stdin.flush()
            after = int(proc.stdout.readline().split()[1])
            return before, after
        finally:
            if proc.stdin:
                proc.stdin.close()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1, 50, 100])
    p.add_argument("--serve", metavar="DIR", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve))
        return
    print(f"{'message':>10} {'peak RSS before':>16} {'peak RSS after':>15} {'growth':>8}")
    for size in args.sizes:
        before, after = measure(size)
        print(
            f"{size:>7} MB {before / 1024:>13.1f} MB {after / 1024:>12.1f} MB"
            f" {(after - before) / 1024:>5.1f} MB"
        )
    print(f"({os.cpu_count()} CPUs; peak RSS = VmHWM of the gateway process)")


if __name__ == "__main__":
    main()
