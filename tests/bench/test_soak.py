"""The soak bench (bench/soak.py) run for a few seconds, so it cannot rot: it starts the
real product, loads it over SMTP and HTTP, finds nothing lost and writes its results."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench.soak_load import CountingSink, lost_messages
from bench.soak_report import Recorder

ROOT = Path(__file__).resolve().parents[2]
_LINK = re.compile(r"http://127\.0\.0\.1:1(/m/\w+)")


@pytest.mark.timeout(120)
def test_a_short_soak_loses_nothing_and_writes_its_results(tmp_path: Path) -> None:
    out = tmp_path / "results"
    cmd = [sys.executable, str(ROOT / "bench" / "soak.py"), "--duration", "6", "--sessions", "2",
           "--readers", "2", "--pause", "0.2", "--think", "0.2", "--drain", "40",
           "--output", str(out)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        output, _ = proc.communicate(timeout=100)
    finally:
        if proc.poll() is None:  # the bench stops its server on SIGTERM
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=90)
    text = output.decode(errors="replace")
    assert proc.returncode == 0, text[-3000:]
    result = json.loads((out / "soak.json").read_text())
    assert result["lost"] == []
    assert result["smtp"]["accepted_plain"] > 0 and result["smtp"]["accepted_sealed"] > 0
    assert result["delivered"] >= result["smtp"]["accepted"]
    assert result["duplicates_at_sink"] == 0
    assert result["readers_signed_in"] == 2
    assert result["pages"]["served"] > 0
    assert not [kind for kind in result["errors"] if "5xx" in kind or kind.startswith("http 5")]
    assert len(result["series"]["accepted_per_s"]) >= 6
    assert result["rss_max_mb"] > 0
    png = (out / "soak.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 20_000
    assert "lost: 0" in text


def _mail(subject: str) -> bytes:
    return f"From: a@acme.example\r\nSubject: {subject}\r\n\r\nbody\r\n".encode()


def test_a_message_accepted_but_not_at_the_sink_counts_as_lost() -> None:
    rec = Recorder()
    sink = CountingSink(rec, "http://127.0.0.1:1")
    for uid, sealed in (("1-1", False), ("1-2", True), ("1-3", True), ("1-4", False)):
        rec.accepted(uid, sealed, 0.01)
    sink._received(["x@partner.example"], _mail("soak-1-1"), _LINK)
    sink._received(["r@partner.example"], _mail("Secure message from Alice: soak-1-2"), _LINK)
    # a sealed message delivered in clear is not a notification: still lost
    sink._received(["r@partner.example"], _mail("soak-1-3"), _LINK)
    assert sorted(lost_messages(rec, sink)) == ["1-3", "1-4"]
