"""What ``bench/soak.py`` measures, and how it is summed up: the recorder its threads write
to, the JSON result, and the chart (throughput, p99 latency and server memory over time)."""

from __future__ import annotations

import argparse
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

WINDOW = 10  # seconds per point of the latency curves (a p99 needs a few dozen samples)


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by nearest rank; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


class Recorder:
    """Counts per second since :meth:`begin`, latencies, errors by kind and RSS samples;
    every method is safe to call from any thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.t0 = time.monotonic()
        self.load_end = self.drain_end = 0.0
        self.per_second: dict[str, Counter[int]] = defaultdict(Counter)
        self.smtp_latency: list[tuple[float, float]] = []  # (second, seconds to 250)
        self.page_latency: list[tuple[float, float]] = []  # (second, seconds per page)
        self.errors: Counter[str] = Counter()
        self.rss: list[tuple[float, int]] = []  # (second, bytes)
        self.accepted_ids: dict[str, bool] = {}  # message id -> sealed?
        self.totals: Counter[str] = Counter()

    def begin(self) -> None:
        self.t0 = time.monotonic()

    def _now(self) -> float:
        return time.monotonic() - self.t0

    def count(self, what: str) -> None:
        with self.lock:
            self.per_second[what][int(self._now())] += 1
            self.totals[what] += 1

    def accepted(self, uid: str, secure: bool, seconds: float) -> None:
        with self.lock:
            now = self._now()
            self.accepted_ids[uid] = secure
            self.per_second["accepted"][int(now)] += 1
            self.totals["accepted"] += 1
            self.totals["accepted_sealed" if secure else "accepted_plain"] += 1
            self.smtp_latency.append((now, seconds))

    def page(self, seconds: float, status: int) -> None:
        with self.lock:
            now = self._now()
            if status == 200:
                self.per_second["pages"][int(now)] += 1
                self.totals["pages"] += 1
                self.page_latency.append((now, seconds))
            else:
                self.errors[f"http {status}"] += 1

    def error(self, kind: str) -> None:
        with self.lock:
            self.errors[kind] += 1

    def sample_rss(self, rss: int | None) -> None:
        if rss is not None:
            with self.lock:
                self.rss.append((self._now(), rss))

    def end_load(self) -> None:
        self.load_end = self._now()

    def drained(self) -> None:
        self.drain_end = self._now()

    def progress_line(self) -> str:
        with self.lock:
            t = self.totals
            errors = sum(self.errors.values())
        return (
            f"accepted {t['accepted']}  delivered {t['delivered']}  pages {t['pages']}  "
            f"signed in {t['signed_in']}  errors {errors}"
        )


def _series(counter: Counter[int], length: int) -> list[int]:
    return [counter.get(s, 0) for s in range(length)]


def _windows(samples: list[tuple[float, float]], length: float) -> list[list[float]]:
    """[window start, p50 ms, p99 ms, count] per ``WINDOW`` seconds that has samples."""
    buckets: dict[int, list[float]] = defaultdict(list)
    for at, seconds in samples:
        buckets[int(at // WINDOW)].append(seconds)
    return [
        [b * WINDOW, percentile(v, 0.5) * 1000, percentile(v, 0.99) * 1000, len(v)]
        for b, v in sorted(buckets.items())
        if b * WINDOW <= length
    ]


def summarize(
    rec: Recorder, args: argparse.Namespace, lost: list[str], strays: int
) -> dict[str, object]:
    """The run as one JSON-ready dict."""
    with rec.lock:
        load = max(rec.load_end, 1e-9)
        length = int(rec.drain_end) + 1
        smtp = [s for _, s in rec.smtp_latency]
        pages = [s for _, s in rec.page_latency]
        return {
            "config": {
                "duration_s": args.duration,
                "sessions": args.sessions,
                "readers": args.readers,
                "secure_share": args.secure_share,
                "pause_s": args.pause,
                "think_s": args.think,
                "database": "postgresql" if args.database_url else "sqlite",
                "sizes_kb": [10, 200],
            },
            "load_seconds": round(rec.load_end, 1),
            "drain_seconds": round(rec.drain_end - rec.load_end, 1),
            "smtp": {
                "accepted": rec.totals["accepted"],
                "accepted_sealed": rec.totals["accepted_sealed"],
                "accepted_plain": rec.totals["accepted_plain"],
                "per_second": rec.totals["accepted"] / load,
                "p50_ms": percentile(smtp, 0.5) * 1000,
                "p99_ms": percentile(smtp, 0.99) * 1000,
            },
            "delivered": rec.totals["delivered"],
            "duplicates_at_sink": rec.totals["duplicate"],
            "pages": {
                "served": rec.totals["pages"],
                "per_second": rec.totals["pages"] / load,
                "p50_ms": percentile(pages, 0.5) * 1000,
                "p99_ms": percentile(pages, 0.99) * 1000,
            },
            "readers_signed_in": rec.totals["signed_in"],
            "readers_without_mail": rec.totals["reader_without_mail"],
            "errors": dict(rec.errors),
            "rss_max_mb": max((b for _, b in rec.rss), default=0) / 2**20,
            "lost": lost,
            "stray_mails_at_sink": strays,
            "series": {
                "accepted_per_s": _series(rec.per_second["accepted"], length),
                "delivered_per_s": _series(rec.per_second["delivered"], length),
                "pages_per_s": _series(rec.per_second["pages"], length),
                "smtp_window_ms": _windows(rec.smtp_latency, length),
                "page_window_ms": _windows(rec.page_latency, length),
                "rss_mb": [[round(t, 1), round(b / 2**20, 1)] for t, b in rec.rss],
            },
        }


def _smooth(values: list[int], width: int = 5) -> list[float]:
    out = []
    for i in range(len(values)):
        part = values[max(0, i - width + 1) : i + 1]
        out.append(sum(part) / len(part))
    return out


def write_chart(result: dict, path: Path) -> None:
    """Three stacked panels over the same time axis: throughput, p99 latency, server RSS;
    a shaded band marks the drain after the load stopped."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = result["series"]
    cfg = result["config"]
    fig, (top, mid, low) = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    seconds = list(range(len(series["accepted_per_s"])))
    for key, label in (
        ("accepted_per_s", "SMTP messages accepted (250)"),
        ("delivered_per_s", "delivered or notified at the relay"),
        ("pages_per_s", "portal pages served (200)"),
    ):
        top.plot(seconds, _smooth(series[key]), label=label, linewidth=1.5)
    top.set_ylabel("per second (5 s average)")
    top.set_title(
        f"sealmail soak: {cfg['sessions']} SMTP sessions, {cfg['readers']} portal readers, "
        f"{cfg['duration_s']:.0f} s, {cfg['database']}; lost: {len(result['lost'])}"
    )
    for key, label in (
        ("smtp_window_ms", "SMTP time to 250, p99"),
        ("page_window_ms", "portal page, p99"),
    ):
        points = series[key]
        mid.plot(
            [p[0] + WINDOW / 2 for p in points],
            [p[2] for p in points],
            marker="o",
            markersize=3,
            label=label,
        )
    mid.set_ylabel(f"milliseconds (per {WINDOW} s)")
    mid.set_ylim(bottom=0)
    low.plot(
        [p[0] for p in series["rss_mb"]],
        [p[1] for p in series["rss_mb"]],
        color="tab:purple",
        label="server RSS",
    )
    low.set_ylabel("server RSS (MB)")
    low.set_xlabel("seconds since the load started")
    low.set_ylim(bottom=0)
    for ax in (top, mid, low):
        ax.axvspan(
            result["load_seconds"],
            result["load_seconds"] + result["drain_seconds"],
            color="grey",
            alpha=0.15,
            label="drain: no new load, the queue empties" if ax is top else None,
        )
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
