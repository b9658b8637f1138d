"""A bounded soak: many SMTP sessions and portal readers at once, and nothing lost at the end.

    .venv/bin/python bench/soak.py [--duration 300] [--sessions 50] [--readers 100]
                                   [--database-url URL] [--output DIR]

System under test: ``sealmail serve`` of this checkout (``PYTHONPATH`` = this tree) on a
fresh ``sealmail init`` directory (SQLite and the local store unless ``--database-url``
names a PostgreSQL database, which should be empty or hold no tenant for ``acme.example``),
its relay pointed at a counting SMTP sink in this process. One tenant, identified by its
private network (127.0.0.0/8), so sessions need no AUTH.

For ``--duration`` seconds:
- ``--sessions`` SMTP sessions each send messages one after another on one connection (a
  new one after an error): plain pass-through and ``[secure]`` (``--secure-share``), sizes
  10-200 KB log-uniform. Secure ones go to the readers' addresses in turn.
- ``--readers`` portal readers each wait for their first notification at the sink, open its
  link, ask for a code, read it from the code mail at the sink and sign in once, then fetch
  their inbox and the message pages it links to, pausing ``--think`` seconds between pages.
  Each reader connects from its own loopback address (127.0.x.y), as separate people do, so
  the portal's per-address sign-in limits apply to each reader, not to the bench.

Then it waits (at most ``--drain`` seconds) until every message answered ``250`` is at the
sink: a plain one delivered, a sealed one's notification sent (the notification exists only
once the message is sealed and stored for the portal). Each message carries its id in the
subject, which the notification repeats.

Records per second: messages accepted, delivered, pages served; time to ``250`` and page
times (p50/p99); errors by kind (SMTP 4xx/5xx, connection, timeouts, HTTP non-200); the
server's RSS every second. Prints a summary, writes ``soak.json`` and ``soak.png`` (see
``bench/soak_report.py``) to ``--output``, and exits 1 if any accepted message was lost.
Everything is bounded: every wait has a limit, the server runs in its own process group and
is stopped in ``finally``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.message_path import free_port, wait_port  # noqa: E402
from bench.soak_load import (  # noqa: E402
    WAIT,
    CountingSink,
    Mix,
    lost_messages,
    portal_reader,
    smtp_session,
)
from bench.soak_report import Recorder, summarize, write_chart  # noqa: E402

DOMAIN = "acme.example"

# --- the product ----------------------------------------------------------------------


class Server:
    """A fresh working directory and ``sealmail serve`` on it, in its own process group."""

    def __init__(
        self, workdir: Path, relay_port: int, portal_port: int, database_url: str | None
    ) -> None:
        self.root = workdir / "sealmail"
        self.config = self.root / "sealmail.toml"
        self.smtp_port = free_port()
        self.portal_port = portal_port
        self.portal_url = f"http://127.0.0.1:{self.portal_port}"
        self.relay_port = relay_port
        self.database_url = database_url
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONSAFEPATH": "1"}
        self.proc: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "sealmail", *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=self.env,
            stdin=subprocess.DEVNULL,
        )
        if proc.returncode != 0:
            raise SystemExit(f"sealmail {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc.stdout

    def init(self) -> None:
        self.cli("init", "--dir", str(self.root))
        values = {
            "smtp_listen": f"127.0.0.1:{self.smtp_port}",
            "portal_listen": f"127.0.0.1:{self.portal_port}",
            "portal_base_url": self.portal_url,
            "relay": f"127.0.0.1:{self.relay_port}",
            "relay_tls": "none",
            "queue_min_backoff": "1s",
            "queue_max_backoff": "5s",
            "queue_poll_interval": "0.2s",
        }
        if self.database_url:
            values["database_url"] = self.database_url
        kept = [
            line
            for line in self.config.read_text().splitlines()
            if line.split("=", 1)[0].strip() not in values
        ]
        self.config.write_text(
            "\n".join(kept + [f"{k} = {json.dumps(v)}" for k, v in values.items()]) + "\n"
        )
        conf = ("--config", str(self.config))
        self.cli(*conf, "migrate")
        self.cli(
            *conf,
            "tenant",
            "create",
            "Acme",
            "--domain",
            DOMAIN,
            "--private-network",
            "127.0.0.0/8",
            "--json",
        )

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sealmail", "--config", str(self.config), "serve"],
            stdout=(self.root / "serve.log").open("ab"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
            start_new_session=True,  # its own process group, stopped as one
        )
        wait_port(self.smtp_port)
        wait_port(self.portal_port)

    def rss(self) -> int | None:
        """Resident memory of the server in bytes (None once it is gone)."""
        if self.proc is None:
            return None
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None

    def disk_usage(self) -> int:
        """Bytes under the working directory: the database (SQLite) and the sealed store."""
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())

    def stop(self) -> None:
        if self.proc is None:
            return
        pgid = self.proc.pid
        for sig, wait in ((signal.SIGTERM, WAIT), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        self.proc = None

    def log_tail(self, lines: int = 15) -> str:
        path = self.root / "serve.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


# --- one run -------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, object]:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    rec = Recorder()
    mix = Mix(args.readers, args.secure_share)
    with tempfile.TemporaryDirectory(prefix="sealmail-soak-") as tmp:
        portal_port = free_port()
        sink = CountingSink(rec, f"http://127.0.0.1:{portal_port}")
        with sink:
            server = Server(Path(tmp), sink.port, portal_port, args.database_url)
            try:
                server.init()
                server.start()
                rec.begin()
                stop_at = time.monotonic() + args.duration
                threads = [
                    threading.Thread(
                        target=smtp_session,
                        args=(i, server.smtp_port, mix, rec, stop_at, args.pause),
                        daemon=True,
                    )
                    for i in range(args.sessions)
                ] + [
                    threading.Thread(
                        target=portal_reader,
                        args=(i, server.portal_port, sink, rec, stop_at, args.think),
                        daemon=True,
                    )
                    for i in range(args.readers)
                ]
                for t in threads:
                    t.start()
                columns = (
                    TextColumn("{task.description}"),
                    BarColumn(),
                    TextColumn("{task.fields[info]}"),
                    TimeRemainingColumn(),
                )
                with Progress(*columns, transient=False) as bar:
                    task = bar.add_task("soak", total=args.duration, info="")
                    while time.monotonic() < stop_at:
                        rec.sample_rss(server.rss())
                        bar.update(
                            task,
                            completed=args.duration - (stop_at - time.monotonic()),
                            info=rec.progress_line(),
                        )
                        time.sleep(1.0)
                    bar.update(task, completed=args.duration)
                    rec.end_load()
                    # a session finishes its message, a reader its sign-in: bounded by WAIT
                    join_until = stop_at + WAIT + 5
                    while any(t.is_alive() for t in threads) and time.monotonic() < join_until:
                        rec.sample_rss(server.rss())
                        time.sleep(0.5)
                    drain = bar.add_task("drain", total=max(1, len(rec.accepted_ids)), info="")
                    drain_until = time.monotonic() + args.drain
                    while True:
                        lost = lost_messages(rec, sink)
                        bar.update(
                            drain,
                            completed=len(rec.accepted_ids) - len(lost),
                            info=f"{len(lost)} waiting",
                        )
                        if not lost or time.monotonic() > drain_until:
                            break
                        rec.sample_rss(server.rss())
                        time.sleep(1.0)
                rec.drained()
                stuck = [t.name for t in threads if t.is_alive()]
                if stuck:
                    rec.error("client thread still running at the end")
                disk = server.disk_usage()
            finally:
                tail = server.log_tail()
                server.stop()
        result = summarize(rec, args, lost, sink.strays)
        result["working_dir_mb"] = round(disk / 2**20, 1)
        if lost:
            result["server_log_tail"] = tail
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of load")
    parser.add_argument("--sessions", type=int, default=50, help="concurrent SMTP sessions")
    parser.add_argument("--readers", type=int, default=100, help="concurrent portal readers")
    parser.add_argument("--secure-share", type=float, default=0.5, help="share of [secure] mail")
    parser.add_argument(
        "--pause", type=float, default=2.0, help="seconds between a session's messages"
    )
    parser.add_argument("--think", type=float, default=1.0, help="seconds between a reader's pages")
    parser.add_argument(
        "--drain", type=float, default=300.0, help="longest wait for the queue to drain"
    )
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (default: SQLite)")
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("soak-results"),
        help="directory for soak.json and soak.png",
    )
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the server is stopped in ``run``'s finally
    signal.signal(signal.SIGTERM, _terminate)
    if args.duration <= 0 or args.sessions < 1 or args.readers < 0 or args.readers > 60000:
        parser.error("need --duration > 0, --sessions >= 1, 0 <= --readers <= 60000")
    result = run(args)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "soak.json").write_text(json.dumps(result, indent=2) + "\n")
    write_chart(result, args.output / "soak.png")
    print_summary(result, args.output)
    return 1 if result["lost"] else 0


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def print_summary(result: dict, output: Path) -> None:
    s = result["smtp"]
    p = result["pages"]
    print(
        f"\naccepted {s['accepted']} ({s['per_second']:.1f}/s), time to 250 p50 "
        f"{s['p50_ms']:.0f} ms p99 {s['p99_ms']:.0f} ms; delivered {result['delivered']}"
    )
    print(
        f"pages {p['served']} ({p['per_second']:.1f}/s), p50 {p['p50_ms']:.0f} ms "
        f"p99 {p['p99_ms']:.0f} ms; readers signed in {result['readers_signed_in']}"
    )
    print(
        f"errors: {result['errors'] or 'none'}; server RSS max {result['rss_max_mb']:.0f} MB; "
        f"drain {result['drain_seconds']:.1f} s; working dir {result['working_dir_mb']:.0f} MB"
    )
    print(f"lost: {len(result['lost'])}" + (f" {result['lost'][:10]}" if result["lost"] else ""))
    print(f"wrote {output / 'soak.json'} and {output / 'soak.png'}")


if __name__ == "__main__":
    sys.exit(main())
