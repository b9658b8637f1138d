#!/usr/bin/env python3
"""End-to-end SMTP throughput: sealmail (`sealmail serve`, black box) beside a real Postfix relay,
in one run, rounds interleaved so machine noise hits both alike.

Every target delivers to the same counting sink (a raw asyncio SMTP server that reads DATA in
bulk and answers VRFY with its count), so "end to end" means: from the first MAIL until the
sink has one delivery per message sent.

Targets:
  postfix   a private Postfix (bench/postfix_relay.py) relaying everything to the sink
  sealed    sealmail with `[secure]` in the subject: the sink gets one notification per message
  clear     sealmail without a trigger: the sink gets the message itself

  SEALMAIL_VENV=.venv python3 bench/e2e_vs_postfix.py \
      --messages 200 --size 100 --sessions 10 --rounds 3
  SEALMAIL_VENV=.venv python3 bench/e2e_vs_postfix.py --size 5,100,1000 --sessions 1,10,50

Run as root from the project root after `apt-get install postfix` (Debian's package; the
system's own Postfix is not touched). `sealmail serve` runs as users run it: `sealmail init`,
a tenant identified by its private network, embedded defaults (SQLite, the local store);
`--database-url` an empty PostgreSQL database instead, `--worker-processes N` that setting.

Prints, per size and number of sessions, per target: msg/s until the last 250, p50/p99 time
to 250, end-to-end msg/s, and the ratio to Postfix; and the peak RSS of every sealmail
process. Loopback only; every process it starts is stopped by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import postfix_relay  # noqa: E402

VENV = Path(os.environ.get("SEALMAIL_VENV", ".venv")).resolve()
SEALMAIL = str(VENV / "bin" / "sealmail")
SENDER = "bench@bench.example"
RCPT = "reader@partner.example"


# ------------------------------------------------------------------ counting sink (a process)
SINK_CODE = r"""
import asyncio, sys
count = 0
async def handle(r, w):
    global count
    w.write(b"220 sink ESMTP\r\n")
    while True:
        line = await r.readline()
        if not line:
            break
        cmd = line[:4].upper()
        if cmd in (b"EHLO", b"HELO"):
            w.write(b"250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 0\r\n")
        elif cmd == b"DATA":
            w.write(b"354 go\r\n"); await w.drain()
            await r.readuntil(b"\r\n.\r\n")
            count += 1
            w.write(b"250 2.0.0 Ok\r\n")
        elif cmd == b"VRFY":
            w.write(b"252 %d\r\n" % count)
        elif cmd == b"QUIT":
            w.write(b"221 bye\r\n"); await w.drain(); break
        else:
            w.write(b"250 2.0.0 Ok\r\n")
        await w.drain()
    w.close()
async def main():
    srv = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]), limit=2**26)
    print("READY", flush=True)
    await srv.serve_forever()
asyncio.run(main())
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 60) -> None:
    import socket

    end = time.time() + timeout
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"nothing on {port}")


# ------------------------------------------------------------------ load generator
def make_message(n: int, size_kb: int, secure: bool) -> bytes:
    line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor\r\n"
    body = line * (size_kb * 1024 // len(line) + 1)
    subject = f"{'[secure] ' if secure else ''}bench message {n}"
    head = (
        f"From: Bench <{SENDER}>\r\nTo: <{RCPT}>\r\nSubject: {subject}\r\n"
        f"Message-ID: <{n}.{time.time_ns()}@bench.example>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
    )
    return head.encode() + body


async def _reply(reader: asyncio.StreamReader) -> bytes:
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("server closed the connection")
        if line[3:4] != b"-":
            return line


async def _session(port: int, messages: list[bytes], lat: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await _reply(reader)
    writer.write(b"EHLO loadgen.test\r\n")
    await _reply(reader)
    for data in messages:
        t0 = time.perf_counter()
        writer.write(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{RCPT}>\r\nDATA\r\n".encode())
        for expected in (b"250", b"250", b"354"):
            got = await _reply(reader)
            if not got.startswith(expected):
                raise RuntimeError(f"unexpected reply {got!r}")
        writer.write(data + b".\r\n")
        got = await _reply(reader)
        if not got.startswith(b"250"):
            raise RuntimeError(f"unexpected reply to DATA {got!r}")
        lat.append(time.perf_counter() - t0)
    writer.write(b"QUIT\r\n")
    await _reply(reader)
    writer.close()


async def sink_count(port: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await _reply(reader)
    writer.write(b"EHLO c\r\n")
    await _reply(reader)
    writer.write(b"VRFY x\r\n")
    n = int((await _reply(reader)).split()[1])
    writer.close()
    return n


async def run_round(
    port: int, sink: int, count: int, sessions: int, size: int, secure: bool, limit: float
) -> dict:
    msgs = [make_message(i, size, secure) for i in range(count)]
    per = [msgs[i::sessions] for i in range(sessions)]
    lat: list[float] = []
    before = await sink_count(sink)
    t0 = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(_session(port, p, lat) for p in per)), limit)
    accepted = time.perf_counter() - t0
    while await sink_count(sink) - before < count:
        if time.perf_counter() - t0 > limit:
            got = await sink_count(sink) - before
            raise TimeoutError(f"sink got {got} of {count} in {limit}s")
        await asyncio.sleep(0.02)
    done = time.perf_counter() - t0
    lat.sort()
    return {
        "rate": count / accepted,
        "e2e": count / done,
        "p50": lat[len(lat) // 2] * 1000,
        "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000,
    }


# ------------------------------------------------------------------ targets
def start_sealmail(
    tmp: Path, sink: int, processes: int = 0, database_url: str = ""
) -> tuple[subprocess.Popen, int, dict]:
    work = tmp / "sm"
    smtp, portal = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALMAIL_")}
    env.update(
        SEALMAIL_SMTP_LISTEN=f"127.0.0.1:{smtp}",
        SEALMAIL_PORTAL_LISTEN=f"127.0.0.1:{portal}",
        SEALMAIL_PORTAL_BASE_URL=f"http://127.0.0.1:{portal}",
        SEALMAIL_RELAY=f"127.0.0.1:{sink}",
        SEALMAIL_WORKER_PROCESSES=str(processes),
        **({"SEALMAIL_DATABASE_URL": database_url} if database_url else {}),
        SEALMAIL_RELAY_TLS="none",
    )
    r = subprocess.run([SEALMAIL, "init", "--dir", str(work)], env=env, capture_output=True)
    if r.returncode:
        raise SystemExit(r.stderr.decode() + r.stdout.decode())
    cfg = str(work / "sealmail.toml")
    subprocess.run(
        [
            SEALMAIL,
            "tenant",
            "create",
            "Bench",
            "--domain",
            "bench.example",
            "--private-network",
            "127.0.0.0/8",
            "--config",
            cfg,
        ],
        env=env,
        check=True,
        capture_output=True,
        cwd=work,
    )
    log = open(tmp / "sealmail.log", "wb")
    proc = subprocess.Popen(
        [SEALMAIL, "serve", "--config", cfg],
        env=env,
        cwd=work,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    wait_port(smtp)
    return proc, smtp, env


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def tree(pid: int) -> list[int]:
    """``pid`` and every process below it (sealmail's worker processes)."""
    out = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids = (task / "children").read_text().split()
        except OSError:
            continue
        for kid in kids:
            out += tree(int(kid))
    return out


def peaks(pid: int) -> list[float]:
    return [rss_mb(p) for p in tree(pid)]


async def main(a: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="e2e-bench-"))
    tmp.chmod(0o755)  # postfix runs as its own user
    sink_port = free_port()
    sink = subprocess.Popen(
        [sys.executable, "-c", SINK_CODE, str(sink_port)], stdout=subprocess.PIPE
    )
    sink.stdout.readline()
    pf_port = free_port()
    pf_dir = str(tmp / "pf")
    procs = [sink]
    sizes = [int(x) for x in str(a.size).split(",")]
    sessions = [int(x) for x in str(a.sessions).split(",")]
    tables: list[tuple[int, int, dict[str, list[dict]]]] = []
    try:
        postfix_relay.start(pf_dir, pf_port, f"127.0.0.1:{sink_port}")
        wait_port(pf_port)
        sm, sm_port, _ = start_sealmail(tmp, sink_port, a.worker_processes, a.database_url)
        procs.append(sm)
        targets = [
            t
            for t in [
                ("postfix", pf_port, False),
                ("sealed", sm_port, True),
                ("clear", sm_port, False),
            ]
            if t[0] in a.targets.split(",")
        ]
        time.sleep(3)  # the worker processes start
        idle = peaks(sm.pid)
        for size in sizes:
            for conc in sessions:
                res: dict[str, list[dict]] = {}
                for _name, port, secure in targets:  # warm-up
                    await run_round(port, sink_port, 20, conc, size, secure, a.limit)
                for _ in range(a.rounds):  # interleaved: noise hits every target alike
                    for name, port, secure in targets:
                        r = await run_round(
                            port, sink_port, a.messages, conc, size, secure, a.limit
                        )
                        res.setdefault(name, []).append(r)
                        print(size, "KB", conc, name, {k: round(v, 1) for k, v in r.items()})
                tables.append((size, conc, res))
        peak = peaks(sm.pid)
    finally:
        for p in procs[1:]:
            p.terminate()
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        try:
            postfix_relay.stop(pf_dir)
        except Exception as e:  # noqa: BLE001
            print("postfix stop:", e)
        sink.kill()

    out = []
    print(
        f"\nsealmail processes: {len(peak)}; peak RSS (VmHWM) per process "
        f"{', '.join(f'{x:.0f}' for x in peak)} MB (idle {', '.join(f'{x:.0f}' for x in idle)})"
    )
    for size, conc, res in tables:

        def med(n: str, k: str, res: dict[str, list[dict]] = res) -> float:
            return statistics.median(r[k] for r in res[n])

        base = med("postfix", "e2e") if "postfix" in res else float("nan")
        print(f"\n{a.messages} x {size} KB, {conc} sessions, median of {a.rounds} rounds")
        print(
            f"{'target':<8} {'msg/s@250':>10} {'p50 ms':>8} {'p99 ms':>8} "
            f"{'e2e msg/s':>10} {'e2e/postfix':>12}"
        )
        for n in res:
            out.append(
                {"size_kb": size, "sessions": conc, "target": n}
                | {k: med(n, k) for k in ("rate", "p50", "p99", "e2e")}
                | {"ratio": med(n, "e2e") / base}
            )
            print(
                f"{n:<8} {med(n, 'rate'):10.1f} {med(n, 'p50'):8.1f} {med(n, 'p99'):8.1f} "
                f"{med(n, 'e2e'):10.1f} {med(n, 'e2e') / base:12.3f}"
            )
    if a.json_out:
        Path(a.json_out).write_text(json.dumps({"runs": out, "peak_rss_mb": peak}, indent=1))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--messages", type=int, default=200)
    p.add_argument("--size", default="100", help="KB; a list runs each: 5,100,1000")
    p.add_argument("--sessions", default="10", help="a list runs each: 1,10,50")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--limit", type=float, default=300)
    p.add_argument("--json-out")
    p.add_argument("--targets", default="postfix,sealed,clear")
    p.add_argument("--database-url", default="", help="an empty PostgreSQL database")
    p.add_argument("--worker-processes", type=int, default=0, help="0 = one per core")
    asyncio.run(main(p.parse_args()))
