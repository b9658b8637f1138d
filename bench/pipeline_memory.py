"""Peak memory of ``sealmail serve`` for large sealed messages: the large path against the
whole-message path, measured in the same run.

    .venv/bin/python bench/pipeline_memory.py [--big 150] [--many 8] [--each 20] [--skip-whole]

Each case starts a fresh ``sealmail serve`` (one process, SQLite, local store, the sink of
the e2e tests as next hop), sends over SMTP either one message of ``--big`` MiB or ``--many``
messages of ``--each`` MiB at once (each a ``[secure]`` message with one base64 attachment,
so it is decided, sealed for the portal part by part and notified), waits for every
notification, then reads the process's peak resident set (VmHWM). The baseline is the same
product with the large path switched off (every message read and parsed whole, as before
issue 15 item 4), plus the idle process and the message size itself for scale.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e import conftest as harness  # noqa: E402
from tests.e2e import test_memory_bound as mb  # noqa: E402
from tests.helpers.smtp_sink import SmtpSink  # noqa: E402

WHOLE = [
    sys.executable,
    "-c",
    "import sys; import gateway.pipeline.runner as r; r.LARGE = 1 << 62; "
    "sys.argv[0] = 'sealmail'; from sealmail.cli.main import main; main()",
]


def run_case(whole: bool, sizes_mib: list[int]) -> tuple[float, float, float]:
    """``(idle MB, peak MB, seconds)`` of one fresh product for these messages at once."""
    saved = harness.SEALMAIL
    harness.SEALMAIL = WHOLE if whole else saved
    try:
        with SmtpSink() as sink, tempfile.TemporaryDirectory() as tmp:
            product = harness.Product(Path(tmp) / "sealmail", sink.port)
            product.init()
            product.tenant = json.loads(  # type: ignore[attr-defined]
                product.cli(
                    "tenant", "create", "Acme", "--domain", "acme.example",
                    "--private-network", "127.0.0.0/8", "--json",
                ).stdout
            )  # fmt: skip
            product.start()
            try:
                idle = max(mb.peak_rss_mb(product).values())
                rcpts = [f"r{i}@partner.example" for i in range(len(sizes_mib))]
                raws = [
                    mb._message(r, f"m{i}", s * mb.MiB - 64 * 1024)
                    for i, (r, s) in enumerate(zip(rcpts, sizes_mib, strict=True))
                ]
                start = time.monotonic()
                threads = [
                    threading.Thread(target=mb._send, args=(product, raw, r))
                    for raw, r in zip(raws, rcpts, strict=True)
                ]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                del raws
                mb._delivered(product, sink, rcpts)
                took = time.monotonic() - start
                return idle, max(mb.peak_rss_mb(product).values()), took
            finally:
                product.stop()
    finally:
        harness.SEALMAIL = saved


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--big", type=int, default=150, help="MiB of the single message")
    ap.add_argument("--many", type=int, default=8, help="messages sent at once")
    ap.add_argument("--each", type=int, default=20, help="MiB of each of them")
    ap.add_argument("--skip-whole", action="store_true", help="no whole-path baseline")
    args = ap.parse_args()
    cases = [
        (f"1 x {args.big} MiB", [args.big]),
        (f"{args.many} x {args.each} MiB", [args.each] * args.many),
    ]
    print(f"{'case':<16} {'path':<7} {'idle MB':>8} {'peak MB':>8} {'peak-idle':>9} {'s':>6}")
    for name, sizes in cases:
        results = {}
        for whole in (False, True):
            if whole and args.skip_whole:
                continue
            idle, peak, took = run_case(whole, sizes)
            results[whole] = peak
            path = "whole" if whole else "large"
            print(f"{name:<16} {path:<7} {idle:8.0f} {peak:8.0f} {peak - idle:9.0f} {took:6.1f}")
        total = sum(sizes) * mb.MiB / 1e6
        line = f"{name:<16} message bytes {total:.0f} MB"
        if True in results:
            line += f"; large/whole peak ratio {results[False] / results[True]:.2f}"
        print(line)


if __name__ == "__main__":
    main()
