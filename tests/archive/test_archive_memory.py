"""A 200 MB message archived (indexed by streaming it) and exported as zip and mbox with
peak memory under 100 MB: measured in a subprocess of its own (bench/archive_memory.py),
whose VmHWM is reset after set-up, so imports do not count but everything the archive and
the exports hold does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIMIT_MB = 100


def test_200_mb_message_archived_and_exported_in_bounded_memory() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "archive_memory.py"), "--mb", "200", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["original_bytes"] >= 200 * 1024 * 1024
    assert result["indexed"] == 1 and result["has_attachment"] is True
    assert result["digest_ok"] is True
    assert result["zip_mismatched"] == 0 and result["mbox_mismatched"] == 0
    assert result["mbox_bytes"] >= result["original_bytes"] * 0.95  # CRLF → LF
    assert result["rss_peak_mb"] < LIMIT_MB, result
