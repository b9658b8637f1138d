#!/usr/bin/env python3
"""The portal's message page for a verified recipient beside a bare Starlette + Jinja2 page,
measured side by side with wrk in one run (rounds interleaved).

It starts its own ``sealmail serve`` (this checkout, a fresh ``sealmail init`` directory
under the system's temporary directory, embedded defaults) with a counting sink as relay,
sends one sealed message (about 20 KB of text) to a reader, signs the reader in with the
code mailed to the sink, checks that the page answers 200 with the message's subject, then
runs ``wrk`` against that page (with the session cookie) and against a bare page served by
uvicorn in a process of its own with the same settings, at each concurrency.

    python bench/portal_page.py                      # c=1 and c=16, 3 rounds of 10 s
    python bench/portal_page.py --duration 5 --rounds 1

Prints requests a second, p50 and p99 for both, and the ratio. Needs Debian's ``wrk``.
Loopback only; every process it starts is stopped.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.message_path import free_port, wait_port  # noqa: E402
from bench.soak import Server  # noqa: E402
from bench.soak_load import Browser, CountingSink, _sign_in, build_message  # noqa: E402
from bench.soak_report import Recorder  # noqa: E402

READER = "reader@partner.example"

BARE_APP = textwrap.dedent(
    """
    from jinja2 import Environment, DictLoader
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    PAGE = '''<!doctype html><html lang="en"><head><title>{{ subject }}</title></head>
    <body><main><h1>{{ subject }}</h1><p>{{ sentence }}</p>
    {% for line in lines %}<p>{{ line }}</p>{% endfor %}</main></body></html>'''
    env = Environment(loader=DictLoader({"page.html": PAGE}), autoescape=True)
    template = env.get_template("page.html")

    async def page(request):
        return HTMLResponse(template.render(
            subject="Quarterly figures", sentence="Alice sent you this on Friday.",
            lines=["Lorem ipsum dolor sit amet, consectetur adipiscing elit"] * 300))

    app = Starlette(routes=[Route("/page", page)])
    """
)


def wrk(url: str, conc: int, seconds: int, cookie: str = "") -> dict[str, float]:
    cmd = ["wrk", f"-t{min(conc, 2)}", f"-c{conc}", f"-d{seconds}s", "--latency"]
    if cookie:
        cmd += ["-H", f"Cookie: {cookie}"]
    out = subprocess.run(
        [*cmd, url], capture_output=True, text=True, timeout=seconds + 60, check=True
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def pct(p: str) -> float:
        m = re.search(rf"{p}%\s+([\d.]+)(us|ms|s)\b", out)
        if m is None:
            return float("nan")
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rate": rate,
        "p50": pct("50"),
        "p99": pct("99"),
        "errors": int(non2xx.group(1)) if non2xx else 0,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", default="1,16")
    a = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("portal_page.py: needs wrk (apt-get install wrk)")
    work = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    server = Server(work, free_port(), free_port(), None)
    bare_port = free_port()
    (work / "bare.py").write_text(BARE_APP)
    bare = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bare:app",
            "--port",
            str(bare_port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=work,
    )
    rec = Recorder()
    results: dict[tuple[str, int], list[dict[str, float]]] = {}
    try:
        server.init()
        with CountingSink(rec, server.portal_url) as sink:
            server.relay_port = sink.port
            _point_relay(server.config, sink.port)
            server.start()
            wait_port(bare_port)
            import smtplib

            with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=60) as smtp:
                smtp.sendmail(
                    "alice@acme.example", [READER], build_message("1-1", 20_000, True, READER)
                )
            link = sink.wait(sink.links, READER, 0, time.monotonic() + 60)
            if link is None:
                raise SystemExit("no notification reached the sink")
            browser = Browser(server.portal_port, "127.0.0.1", rec)
            failed = _sign_in(browser, link, READER, sink, time.monotonic() + 60)
            if failed:
                raise SystemExit(f"sign-in failed: {failed}")
            status, _, inbox = browser.request("/inbox")
            page = re.findall(r'href="(/messages/[A-Za-z0-9_\-]+)[#"]', inbox)
            if status != 200 or not page:
                raise SystemExit(f"inbox {status}, no message link")
            status, _, body = browser.request(page[0])
            if status != 200 or "soak-1-1" not in body:
                raise SystemExit(f"the message page answered {status} without its subject")
            cookie = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
            targets = [
                ("portal", f"{server.portal_url}{page[0]}", cookie),
                ("bare", f"http://127.0.0.1:{bare_port}/page", ""),
            ]
            for conc in [int(c) for c in a.concurrency.split(",")]:
                for _ in range(a.rounds):
                    for name, url, ck in targets:
                        r = wrk(url, conc, a.duration, ck)
                        results.setdefault((name, conc), []).append(r)
                        print(name, f"c={conc}", {k: round(v, 1) for k, v in r.items()})
    finally:
        server.stop()
        bare.terminate()
        bare.wait(20)
    print(f"\nmedian of {a.rounds} rounds of {a.duration} s (wrk)")
    print(
        f"{'c':>3} {'portal req/s':>13} {'p50 ms':>7} {'p99 ms':>7} {'bare req/s':>11} "
        f"{'p99 ms':>7} {'ratio':>6}"
    )
    for conc in sorted({c for _, c in results}):
        p, b = results[("portal", conc)], results[("bare", conc)]

        def med(rows: list[dict[str, float]], key: str) -> float:
            return statistics.median(r[key] for r in rows)

        print(
            f"{conc:>3} {med(p, 'rate'):13.0f} {med(p, 'p50'):7.1f} {med(p, 'p99'):7.1f} "
            f"{med(b, 'rate'):11.0f} {med(b, 'p99'):7.1f} {med(p, 'rate') / med(b, 'rate'):6.3f}"
        )
        if any(r["errors"] for r in p):
            print("    portal answered non-2xx:", [r["errors"] for r in p])
    return 0


def _point_relay(config: Path, port: int) -> None:
    lines = [ln for ln in config.read_text().splitlines() if not ln.startswith("relay =")]
    config.write_text("\n".join([*lines, f'relay = "127.0.0.1:{port}"']) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
