"""Looking at a page the way the brief asks: axe-core (no serious or critical violation), no
sideways scrolling at 390 px, and screenshots at 390x844 and 1280x800 kept for people to
look at.

Screenshots go under ``$SEALMAIL_ARTIFACTS/screenshots`` (default ``.artifacts/`` at the
repository root, ignored by git); the folder is printed at the end of the test run.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import axe_playwright_python

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}
DESK = {"width": 1280, "height": 800}
AXE_JS = Path(axe_playwright_python.__file__).parent / "axe.min.js"
BLOCKING = ("serious", "critical")


def artifacts_dir() -> Path:
    return Path(os.environ.get("SEALMAIL_ARTIFACTS", ROOT / ".artifacts"))


def screenshots_dir() -> Path:
    folder = artifacts_dir() / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        # evaluated through the DevTools protocol, not as a <script>: the page's own CSP
        # (no inline scripts) stays in force for everything else
        page.evaluate(AXE_JS.read_text(encoding="utf-8") + "\n;void 0")
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [v for v in result["violations"] if v.get("impact") in BLOCKING]


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        targets = [", ".join(n.get("target", [])) for n in v.get("nodes", [])][:3]
        lines.append(f"{v['impact']}: {v['id']} - {v['help']} at {targets}")
    return "\n".join(lines)


def horizontal_overflow(page: Any) -> int:
    """How many CSS pixels the page is wider than its viewport (0 = no sideways scroll)."""
    return int(
        page.evaluate(
            "() => Math.max(document.documentElement.scrollWidth, document.body ?"
            " document.body.scrollWidth : 0) - document.documentElement.clientWidth"
        )
    )


def look_at(page: Any, name: str, *, group: str = "portal") -> None:
    """Check the page at phone and desk width (axe at both, no sideways scroll at 390 px),
    screenshot both, and fail naming what is wrong. The viewport is left at phone size."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")
    folder = screenshots_dir() / group
    folder.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    for label, size in (("1280x800", DESK), ("390x844", PHONE)):
        page.set_viewport_size(size)
        page.wait_for_timeout(50)  # one layout pass at the new width
        page.screenshot(path=str(folder / f"{safe}-{label}.png"), full_page=True)
        found = axe_violations(page)
        if found:
            problems.append(f"axe at {label}:\n{describe(found)}")
        if size is PHONE:
            over = horizontal_overflow(page)
            if over > 0:
                problems.append(f"{over} px of sideways scrolling at 390 px")
    assert not problems, f"page {name!r} ({page.url}):\n" + "\n".join(problems)
