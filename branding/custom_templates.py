"""Tenants' own notification templates, rendered safely (issue 13, item 3).

A tenant who wants full control writes the notice as Jinja2 (HTML and text). It runs in the
sandbox of :mod:`branding.template_worker`, in a separate process that this module keeps
running and kills when a render takes longer than ``TIME_LIMIT`` (a thread could not be
stopped), with only the documented variables of ``NOTICE_VARIABLES`` as plain text or yes/no
values: a template can never reach files, settings, other tenants' data or Python internals.
Its output is cut at the worker's size limit. Errors come back with their line; at send time
a failing template falls back to the default one, so the notice always goes out.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger("sealmail.branding")

TIME_LIMIT = 1.0  # seconds a render may take (a notice takes milliseconds); the bound is 2 s
START_LIMIT = 15.0  # seconds a new rendering process may take to be ready
MAX_SOURCE = 64 * 1024

NOTICE_VARIABLES: dict[str, str] = {
    "tenant_name": "your organisation's name as the brand shows it",
    "brand_color": "the brand colour, e.g. #1f4e79",
    "brand_text_color": "the colour of text on the brand colour",
    "logo_src": "the logo's address inside the mail (cid:...), or empty",
    "notification_text": "your own text for notices (may be empty)",
    "footer_text": "your disclaimer or footer (may be empty)",
    "read_button_text": "the text of the button that opens the message",
    "privacy_url": "the address of your privacy statement (may be empty)",
    "support_contact": "who recipients may ask for help (may be empty)",
    "show_sender": "yes/no: whether notices name the sender",
    "show_subject": "yes/no: whether notices show the subject",
    "sender_name": "the sender's name (or address)",
    "sender_address": "the sender's address",
    "subject": "the message's subject (empty when hidden)",
    "link": "the recipient's link to the message (required)",
    "recipient": "the recipient's address",
    "expires": "when the link stops working, e.g. 14 March 2026, 09:30 UTC",
    "portal_url": "the portal's address",
    "portal_host": "the portal's host name",
    "reference": "the notice's reference code, checkable at portal_url/verify",
}

SAMPLE: dict[str, str | bool] = {
    "tenant_name": "Acme Bank",
    "brand_color": "#1f4e79",
    "brand_text_color": "#ffffff",
    "logo_src": "",
    "notification_text": "",
    "footer_text": "Acme Bank plc, 1 Example Street.",
    "read_button_text": "Open the secure message",
    "privacy_url": "https://acme.example/privacy",
    "support_contact": "help@acme.example",
    "show_sender": True,
    "show_subject": True,
    "sender_name": "Alice Sender",
    "sender_address": "alice@acme.example",
    "subject": "Quarterly figures",
    "link": "https://secure.example.com/m/EXAMPLE-LINK",
    "recipient": "bob@client.example",
    "expires": "14 March 2026, 09:30 UTC",
    "portal_url": "https://secure.example.com",
    "portal_host": "secure.example.com",
    "reference": "7KQ4-M2XD-9TB",
}


class TemplateProblem(Exception):
    """Why a tenant's template was not used: a sentence and the template's line, if known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        self.message, self.line = message, line
        super().__init__(f"line {line}: {message}" if line else message)


class _Worker:
    """One rendering process, restarted after a timeout or a crash; one render at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._proc_ready = False
        self._buffer = b""

    def _start(self) -> subprocess.Popen[bytes]:
        root = str(Path(__file__).resolve().parents[1])
        env = {"PYTHONPATH": root, "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"}
        return subprocess.Popen(
            [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {root!r}); "
             "from branding.template_worker import main; main()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd="/",
            close_fds=True,
        )  # fmt: skip

    def _ready(self) -> subprocess.Popen[bytes]:
        """The running process, started (and waited for: its start is not the template's
        time) if there is none."""
        if self._proc is None or self._proc.poll() is not None:
            self._proc = self._start()
        if not self._proc_ready:
            line = self._read_line(self._proc, START_LIMIT)
            if line is None:
                self._kill()
                raise TemplateProblem("the template renderer did not start; try again")
            self._proc_ready = True
        return self._proc

    def _read_line(self, proc: subprocess.Popen[bytes], limit: float) -> bytes | None:
        assert proc.stdout is not None
        deadline = time.monotonic() + limit
        fd = proc.stdout.fileno()
        while not self._buffer.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer, b""
        return line

    def render(self, request: dict[str, object], limit: float) -> dict[str, object]:
        with self._lock:
            proc = self._ready()
            assert proc.stdin is not None and proc.stdout is not None
            try:
                proc.stdin.write(json.dumps(request).encode() + b"\n")
                proc.stdin.flush()
            except (BrokenPipeError, OSError):
                self._kill()
                raise TemplateProblem("the template renderer stopped; try again") from None
            started = time.monotonic()
            answer = self._read_line(proc, limit)
            if answer is None:
                crashed = proc.poll() is not None or time.monotonic() - started < limit
                self._kill(respawn=True)  # the next render finds a process starting already
                if crashed:
                    raise TemplateProblem("stopped: it needed too much memory or crashed")
                raise TemplateProblem(
                    f"stopped: it took longer than {limit:g} second (a loop that never ends?)"
                )
            return json.loads(answer)  # type: ignore[no-any-return]

    def _kill(self, respawn: bool = False) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None
        self._buffer, self._proc_ready = b"", False
        if respawn:
            self._proc = self._start()

    def close(self) -> None:
        with self._lock:
            self._kill()


_WORKER = _Worker()
atexit.register(_WORKER.close)


def close_worker() -> None:
    """Stop the rendering process (it is started again on the next render)."""
    _WORKER.close()


def _clean(context: Mapping[str, object]) -> dict[str, str | bool]:
    """Only documented names, only text or yes/no: nothing with attributes to walk."""
    out: dict[str, str | bool] = {}
    for name in NOTICE_VARIABLES:
        value = context.get(name, "")
        out[name] = value if isinstance(value, bool) else str(value if value is not None else "")
    return out


def render_limited(source: str, context: Mapping[str, object], *, html: bool) -> str:
    """Render a tenant's template; raises :class:`TemplateProblem` within the time limit."""
    if len(source) > MAX_SOURCE:
        raise TemplateProblem(f"the template is larger than {MAX_SOURCE // 1024} KB")
    answer = _WORKER.render(
        {"source": source, "context": _clean(context), "html": html}, TIME_LIMIT
    )
    if "ok" in answer:
        return str(answer["ok"])
    line = answer.get("line")
    raise TemplateProblem(
        str(answer.get("error", "failed")), line if isinstance(line, int) else None
    )


def check_template(source: str, *, html: bool) -> TemplateProblem | None:
    """Why ``source`` cannot be used (syntax, a trial render with sample values), or None.
    An HTML notice must contain the recipient's link."""
    try:
        out = render_limited(source, SAMPLE, html=html)
    except TemplateProblem as problem:
        return problem
    if html and str(SAMPLE["link"]) not in out:
        return TemplateProblem("the notice must contain the link: use {{ link }}")
    return None


def render_or_default(
    source: str, context: Mapping[str, object], *, html: bool, default: str
) -> str:
    """The tenant's template when it works, else ``default`` (logged without content)."""
    if not source.strip():
        return default
    try:
        return render_limited(source, context, html=html)
    except TemplateProblem as problem:
        log.warning("custom notice template not used (%s); the default was", problem)
        return default
