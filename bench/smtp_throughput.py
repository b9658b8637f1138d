"""SMTP throughput of the gateway next to a baseline measured in the same run.

    .venv/bin/python bench/smtp_throughput.py [--messages 300] [--sessions 1,10,50] [--size 100]

System under test (a subprocess): the real gateway + worker (SQLite, local store, the
tenant identified by a private network), receiving sealed (``[secure]``) messages of
``--size`` KB from ``--sessions`` concurrent sessions; notifications go to a sink.
Baseline (a subprocess): a plain aiosmtpd relay that forwards each message with
aiosmtplib (one reused connection per session) to the same sink before its 250.
The sink is a third process (stock aiosmtpd, counting). The load generator (this process)
speaks SMTP over raw sockets and times MAIL → 250 for every message.

Prints, per target, the median of ``--rounds`` rounds: messages/s until the last 250,
p99 time-to-250, and for the gateway also messages/s until the sink has every
notification (end to end); then the ratios to the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SENDER = "bench@bench.example"
RCPT = "reader@partner.example"


# --- the three servers (each runs in its own process) ---------------------------------


def _announce(port: int) -> None:
    print(f"READY {port}", flush=True)


async def _until_stdin_closes() -> None:
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)


async def serve_sink() -> None:
    from aiosmtpd.smtp import SMTP

    class Counter:
        count = 0

        async def handle_DATA(self, server, session, envelope):  # noqa: ANN001
            Counter.count += 1
            return "250 2.0.0 Ok"

        async def handle_VRFY(self, server, session, envelope, address):  # noqa: ANN001
            return f"252 {Counter.count}"

    handler = Counter()
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(handler, hostname="sink", data_size_limit=None), "127.0.0.1", 0
    )
    _announce(server.sockets[0].getsockname()[1])
    await _until_stdin_closes()


async def serve_baseline(relay_port: int) -> None:
    import aiosmtplib
    from aiosmtpd.smtp import SMTP

    class Forwarder:
        def __init__(self) -> None:
            self.client: aiosmtplib.SMTP | None = None

        async def handle_DATA(self, server, session, envelope):  # noqa: ANN001
            if self.client is None or not self.client.is_connected:
                self.client = aiosmtplib.SMTP(
                    hostname="127.0.0.1", port=relay_port, start_tls=False
                )
                await self.client.connect()
            await self.client.sendmail(
                envelope.mail_from, envelope.rcpt_tos, envelope.original_content
            )
            return "250 2.0.0 Ok: forwarded"

    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(Forwarder(), hostname="baseline", data_size_limit=None), "127.0.0.1", 0
    )
    _announce(server.sockets[0].getsockname()[1])
    await _until_stdin_closes()


def _write_cert(directory: Path) -> tuple[str, str]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "k.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(directory / "c.pem"), str(directory / "k.pem")


async def serve_gateway(workdir: str, relay_port: int) -> None:
    from core.accounts.tenants import create_tenant
    from core.config.loading import load_settings
    from core.db import migrate
    from core.rootkey.file_root import FileRootKey
    from core.services import Services
    from gateway.intake.handler import build_gateway
    from gateway.worker import run_worker

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
            "relay": f"127.0.0.1:{relay_port}",
            "relay_tls": "none",
            "queue_poll_interval": "0.2s",
        },
    )
    await asyncio.to_thread(migrate, settings.database_url)
    services = Services.open(settings)
    async with services.db.session() as s:
        await create_tenant(
            s, services.keyring, "Bench", ["bench.example"], networks=[("127.0.0.0/8", True)]
        )
        await s.commit()
    wakeup, stop = asyncio.Event(), asyncio.Event()
    gateway = build_gateway(services, wakeup)
    _, port = await gateway.start()
    worker = asyncio.create_task(run_worker(services, stop, wakeup))
    _announce(port)
    await _until_stdin_closes()
    await gateway.stop(5)
    stop.set()
    await worker
    await services.close()


# --- the load generator ----------------------------------------------------------------


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


async def _session(port: int, messages: list[bytes], latencies: list[float]) -> None:
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
        latencies.append(time.perf_counter() - t0)
    writer.write(b"QUIT\r\n")
    await _reply(reader)
    writer.close()


async def sink_count(port: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await _reply(reader)
    writer.write(b"EHLO c\r\nVRFY <count@x>\r\nQUIT\r\n")
    await _reply(reader)
    count = int((await _reply(reader)).split()[1])
    writer.close()
    return count


async def run_round(
    port: int, sink_port: int, count: int, sessions: int, size_kb: int, secure: bool, limit: float
) -> dict[str, float]:
    msgs = [make_message(i, size_kb, secure) for i in range(count)]
    per = [msgs[i::sessions] for i in range(sessions)]
    latencies: list[float] = []
    before = await sink_count(sink_port)
    t0 = time.perf_counter()
    await asyncio.wait_for(
        asyncio.gather(*(_session(port, p, latencies) for p in per)), timeout=limit
    )
    accepted = time.perf_counter() - t0
    while await sink_count(sink_port) - before < count:
        if time.perf_counter() - t0 > limit:
            raise TimeoutError("the sink did not get every message in time")
        await asyncio.sleep(0.01)
    delivered = time.perf_counter() - t0
    latencies.sort()
    return {
        "rate": count / accepted,
        "e2e": count / delivered,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "drain_ms": (delivered - accepted) * 1000,
    }


class Server:
    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
            text=True,
            start_new_session=True,  # its own group: stopped with whatever it started
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line.startswith("READY "):
            self.close()
            raise RuntimeError(f"{args[0]} did not start")
        self.port = int(line.split()[1])

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


async def bench(args: argparse.Namespace) -> None:
    levels = [int(x) for x in str(args.sessions).split(",") if x.strip()]
    sink = Server("--sink")
    baseline = Server("--baseline", str(sink.port))
    results: dict[tuple[str, int], list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="sealmail-bench-") as tmp:
        gateway = Server("--gateway", tmp, str(sink.port))
        try:
            # warm-up, then alternate so that noise hits both alike
            await run_round(baseline.port, sink.port, 20, levels[0], args.size, False, 60)
            await run_round(gateway.port, sink.port, 20, levels[0], args.size, True, 60)
            for sessions in levels:
                for _ in range(args.rounds):
                    for name, port, secure in (
                        ("baseline", baseline.port, False),
                        ("sealed", gateway.port, True),
                    ):
                        results.setdefault((name, sessions), []).append(
                            await run_round(
                                port,
                                sink.port,
                                args.messages,
                                sessions,
                                args.size,
                                secure,
                                args.time_limit,
                            )  # fmt: skip
                        )
        finally:
            gateway.close()
            baseline.close()
            sink.close()

    def med(name: str, sessions: int, key: str) -> float:
        return statistics.median(r[key] for r in results[(name, sessions)])

    print(
        f"{args.messages} messages of {args.size} KB, median of {args.rounds} rounds "
        f"({os.cpu_count()} CPUs); baseline = aiosmtpd relay forwarding with aiosmtplib"
    )
    print(
        f"{'sessions':>8} {'target':<22} {'msg/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'e2e msg/s':>10} {'drain ms':>9} {'ratio':>6}"
    )
    for sessions in levels:
        base = med("baseline", sessions, "rate")
        for name, label in (("baseline", "baseline relay"), ("sealed", "sealmail sealed")):
            rate = med(name, sessions, "rate")
            print(
                f"{sessions:>8} {label:<22} {rate:8.1f} {med(name, sessions, 'p50_ms'):8.1f} "
                f"{med(name, sessions, 'p99_ms'):8.1f} {med(name, sessions, 'e2e'):10.1f} "
                f"{med(name, sessions, 'drain_ms'):9.0f} {rate / base:6.2f}"
            )
    print(
        "msg/s = until the last 250; e2e = until the sink has every message (for sealmail:"
        " every notification); drain = from the last 250 to the last delivery"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=int, default=300)
    p.add_argument("--sessions", default="1,10,50", help="concurrent sessions, comma list")
    p.add_argument("--size", type=int, default=100, help="KB per message")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--time-limit", type=float, default=120.0)
    p.add_argument("--sink", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--baseline", metavar="RELAY_PORT", type=int, help=argparse.SUPPRESS)
    p.add_argument("--gateway", nargs=2, metavar=("DIR", "RELAY_PORT"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.sink:
        asyncio.run(serve_sink())
    elif args.baseline:
        asyncio.run(serve_baseline(args.baseline))
    elif args.gateway:
        asyncio.run(serve_gateway(args.gateway[0], int(args.gateway[1])))
    else:
        asyncio.run(bench(args))


if __name__ == "__main__":
    main()
