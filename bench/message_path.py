"""Which project modules one message's path from SMTP to the portal runs code in.

    .venv/bin/python bench/message_path.py [--tree DIR] [--against SHA] [--json]

System under test: ``sealmail serve`` of a source tree (this checkout, or ``--tree DIR`` run
with ``PYTHONPATH=DIR``) on a fresh ``sealmail init`` directory, its relay pointed at a
sink in this process. It starts through a tiny bootstrap that installs a profile hook
(``sys.setprofile`` and ``threading.setprofile``) recording the source file of every Python
function that runs; ``SIGUSR1`` clears the record once the server is ready, ``SIGUSR2``
writes it to a file. In between, one sealed (``[secure]``) message with an attachment goes
in over SMTP (STARTTLS + AUTH), the notification is awaited at the sink, and the recipient
opens it over HTTP: the link, a code by mail, the message page, the attachment download.

Prints the project modules touched (files under core/, archive/, branding/,
billing_hooks/, gateway/, portal/, sealmail/, support/) grouped by package, their count,
and "by stage" the ones under gateway/ and portal/ grouped by their folder.
``--against SHA`` also extracts that commit of this repository (``git archive``) and runs
it the same way, then prints both and the difference. Only the external contract is used
(CLI, config keys, SMTP, HTTP), so it runs against any version of the tree.

Background loops that run while the message is under way (the delivery worker's polling,
housekeeping) are on the path too and are counted; the count varies by a few modules from
run to run when such a loop happens to fire.
"""

from __future__ import annotations

import argparse
import html
import io
import json
import os
import re
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    "core",
    "archive",
    "branding",
    "billing_hooks",
    "gateway",
    "portal",
    "sealmail",
    "support",
)
STAGES = ("gateway", "portal")
WAIT = 60.0  # seconds: every wait is bounded by this
RECIPIENT = "bob@recipient.test"

BOOTSTRAP = '''\
"""Run ``python -m sealmail`` with a profile hook recording the files of code that runs."""
import os, runpy, signal, sys, threading

_seen = set()
_out = os.environ["MESSAGE_PATH_OUT"]


def _profile(frame, event, arg):
    if event == "call":
        _seen.add(frame.f_code.co_filename)


def _clear(signum, frame):
    _seen.clear()


def _dump(signum, frame):
    files = sorted(_seen)
    with open(_out + ".tmp", "w") as f:
        f.write("\\n".join(files))
    os.replace(_out + ".tmp", _out)


signal.signal(signal.SIGUSR1, _clear)
signal.signal(signal.SIGUSR2, _dump)
threading.setprofile(_profile)
sys.setprofile(_profile)
sys.argv = ["sealmail", *sys.argv[1:]]
runpy.run_module("sealmail", run_name="__main__", alter_sys=True)
'''


# --- the relay: a capturing sink in this process ---------------------------------------


class Sink:
    """An aiosmtpd server on a loopback port that keeps what it receives."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[tuple[list[str], bytes]] = []
        self._lock = threading.Lock()
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: ANN001
                with sink._lock:
                    sink.messages.append((list(envelope.rcpt_tos), envelope.content))
                return "250 2.0.0 stored"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> Sink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    def count(self) -> int:
        with self._lock:
            return len(self.messages)

    def wait_for(self, rcpt: str, after: int = 0) -> bytes:
        """The first message to ``rcpt`` among those received after the first ``after``."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            with self._lock:
                for rcpts, data in self.messages[after:]:
                    if rcpt in rcpts:
                        return data
            time.sleep(0.05)
        raise SystemExit(f"no mail to {rcpt} at the sink within {WAIT:.0f}s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port} after {WAIT:.0f}s")


# --- the product, run from a source tree -------------------------------------------------


class Product:
    """A fresh working directory and ``sealmail serve`` from ``tree`` running on it."""

    def __init__(self, tree: Path, workdir: Path, relay_port: int) -> None:
        self.tree = tree
        self.root = workdir / "sealmail"
        self.config = self.root / "sealmail.toml"
        self.smtp_port = free_port()
        self.portal_port = free_port()
        self.portal_url = f"http://127.0.0.1:{self.portal_port}"
        self.relay_port = relay_port
        self.trace = workdir / "touched.txt"
        self.bootstrap = workdir / "bootstrap.py"
        # PYTHONSAFEPATH keeps the current directory and the script's off sys.path, so
        # PYTHONPATH alone decides which tree runs (the editable install comes after it)
        self.env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONSAFEPATH": "1"}
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
            raise SystemExit(f"sealmail {' '.join(args)} failed: {proc.stderr}")
        return proc.stdout

    def init(self) -> dict[str, str]:
        self.cli("init", "--dir", str(self.root))
        values = {
            "smtp_listen": f"127.0.0.1:{self.smtp_port}",
            "portal_listen": f"127.0.0.1:{self.portal_port}",
            "portal_base_url": self.portal_url,
            "relay": f"127.0.0.1:{self.relay_port}",
            "relay_tls": "none",
            "queue_poll_interval": "0.2s",
        }
        kept = [
            line
            for line in self.config.read_text().splitlines()
            if line.split("=", 1)[0].strip() not in values
        ]
        lines = kept + [f"{k} = {json.dumps(v)}" for k, v in values.items()]
        self.config.write_text("\n".join(lines) + "\n")
        return json.loads(
            self.cli(
                "--config",
                str(self.config),
                "tenant",
                "create",
                "Acme",
                "--domain",
                "acme.example",
                "--json",
            )  # fmt: skip
        )

    def start(self) -> None:
        self.bootstrap.write_text(BOOTSTRAP)
        self.proc = subprocess.Popen(
            [sys.executable, str(self.bootstrap), "--config", str(self.config), "serve"],
            stdout=(self.root / "serve.log").open("ab"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**self.env, "MESSAGE_PATH_OUT": str(self.trace)},
            start_new_session=True,  # its own group: stopped with whatever it started
        )
        wait_port(self.smtp_port)
        wait_port(self.portal_port)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def touched(self) -> list[str]:
        """Ask the server for its record and read it (the files, as the server saw them)."""
        self.trace.unlink(missing_ok=True)
        self.signal(signal.SIGUSR2)
        deadline = time.monotonic() + WAIT
        while not self.trace.exists():
            if time.monotonic() > deadline:
                raise SystemExit(f"the server wrote no record within {WAIT:.0f}s")
            time.sleep(0.05)
        return self.trace.read_text().splitlines()

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None


# --- the message's path: SMTP in, notification out, the portal over HTTP -----------------


def send_sealed(product: Product, tenant: dict[str, str], attachment: bytes) -> None:
    msg = EmailMessage()
    msg["From"] = "Alice Sender <alice@acme.example>"
    msg["To"] = RECIPIENT
    msg["Subject"] = "[secure] Quarterly numbers"
    msg.set_content("Dear Bob,\n\nthe numbers are attached.\n\nAlice")
    msg.add_attachment(attachment, maintype="application", subtype="pdf", filename="report.pdf")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", product.smtp_port, timeout=WAIT) as smtp:
        smtp.starttls(context=ctx)
        smtp.login(tenant["smtp_username"], tenant["smtp_password"])
        smtp.send_message(msg, from_addr="alice@acme.example", to_addrs=[RECIPIENT])


def text_of(data: bytes) -> str:
    msg = message_from_bytes(data, policy=policy.default)
    return "\n".join(
        part.get_content() for part in msg.walk() if part.get_content_maintype() == "text"
    )


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class Visitor:
    """A browser over plain HTTP; the portal's cookies are ``Secure``, which a cookie jar
    would not send to ``http://127.0.0.1``, so they are kept here by name."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.cookies: dict[str, str] = {}
        self._opener = urllib.request.build_opener(_NoRedirects)

    def request(
        self, path: str, form: dict[str, str] | None = None, expect: int = 200
    ) -> tuple[dict[str, str], bytes]:
        headers = {"Origin": self.base_url} if form is not None else {}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(self.base_url + path, data=data, headers=headers)
        try:
            resp = self._opener.open(req, timeout=WAIT)
        except urllib.error.HTTPError as err:
            resp = err
        with resp:
            body = resp.read()
            for line in resp.headers.get_all("Set-Cookie") or []:
                name, _, rest = line.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
            if resp.status != expect:
                raise SystemExit(f"{path}: HTTP {resp.status}, expected {expect}")
            return dict(resp.headers.items()), body


def read_in_portal(product: Product, sink: Sink, notification: bytes, attachment: bytes) -> None:
    found = re.findall(
        re.escape(product.portal_url) + r"(/m/[A-Za-z0-9_\-]+)", text_of(notification)
    )
    if not found:
        raise SystemExit("no portal link in the notification")
    link = found[0]
    visitor = Visitor(product.portal_url)
    _, page = visitor.request(link)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.decode())
    if not csrf:
        raise SystemExit("no CSRF field on the entry page")
    form = {"csrf": html.unescape(csrf.group(1))}
    before = sink.count()
    visitor.request(f"{link}/code", form)
    code = re.findall(r"\b(\d{6,10})\b", text_of(sink.wait_for(RECIPIENT, after=before)))
    if not code:
        raise SystemExit("no code in the code mail")
    headers, _ = visitor.request(f"{link}/verify", {**form, "code": code[0]}, expect=303)
    message_path = headers["location"].removeprefix(product.portal_url)
    _, page = visitor.request(message_path)
    files = re.findall(rf'href="({re.escape(message_path)}/attachments/[^"]+)"', page.decode())
    if not files:
        raise SystemExit("no attachment link on the message page")
    _, data = visitor.request(files[0])
    if data != attachment:
        raise SystemExit("the downloaded attachment is not the one sent")


# --- one run, and the report ---------------------------------------------------------


def project_modules(tree: Path, files: list[str]) -> list[str]:
    """The dotted names of the project's modules among ``files``."""
    base = tree.resolve()
    modules = set()
    for name in files:
        path = Path(name)
        if not path.is_absolute() or path.suffix != ".py":
            continue
        try:
            rel = path.resolve().relative_to(base)
        except ValueError:
            continue
        if rel.parts[0] in PACKAGES:
            parts = rel.with_suffix("").parts
            modules.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return sorted(modules)


def measure(tree: Path, settle: float) -> list[str]:
    """Run one message through ``sealmail serve`` of ``tree``; the modules it touched."""
    attachment = b"%PDF-1.4\n" + os.urandom(30_000)
    with tempfile.TemporaryDirectory(prefix="message-path-") as tmp, Sink() as sink:
        product = Product(tree, Path(tmp), sink.port)
        tenant = product.init()
        product.start()
        try:
            time.sleep(settle)  # startup work (first polls, warm-up) is not the message's
            product.signal(signal.SIGUSR1)
            time.sleep(0.2)
            send_sealed(product, tenant, attachment)
            notification = sink.wait_for(RECIPIENT)
            read_in_portal(product, sink, notification, attachment)
            files = product.touched()
        finally:
            product.stop()
    return project_modules(tree, files)


def package_of(module: str) -> str:
    return module.split(".", 1)[0]


def stage_of(module: str) -> str:
    """``gateway/`` or ``portal/`` and the sub-package folder the module sits in, if any."""
    parts = module.split(".")
    return "/".join(parts[:2]) + "/" if len(parts) > 2 else parts[0] + "/ (top level)"


def report(label: str, modules: list[str]) -> dict[str, object]:
    by_package: dict[str, list[str]] = {}
    for m in modules:
        by_package.setdefault(package_of(m), []).append(m)
    by_stage: dict[str, list[str]] = {}
    for m in modules:
        if package_of(m) in STAGES:
            by_stage.setdefault(stage_of(m), []).append(m)
    print(f"\n== {label}: {len(modules)} project modules on one message's path")
    for pkg in PACKAGES:
        if pkg in by_package:
            names = ", ".join(
                m.split(".", 1)[1] if "." in m else "(package)" for m in by_package[pkg]
            )
            print(f"  {pkg + '/':<15} {len(by_package[pkg]):>3}  {names}")
    print("  by stage:")
    for stage in sorted(by_stage):
        print(f"    {stage:<24} {len(by_stage[stage]):>3}")
    for pkg in STAGES:
        total = sum(len(v) for k, v in by_stage.items() if k.split("/")[0] == pkg)
        print(f"    {pkg + '/ in all':<24} {total:>3}")
    return {
        "tree": label,
        "count": len(modules),
        "by_package": {k: len(v) for k, v in by_package.items()},
        "by_stage": {k: len(v) for k, v in by_stage.items()},
        "modules": modules,
    }


def extract(sha: str, into: Path) -> Path:
    """``git archive`` of a commit of this repository, extracted under ``into``."""
    found = subprocess.run(
        ["git", "-C", str(ROOT), "cat-file", "-e", f"{sha}^{{commit}}"], capture_output=True
    )
    if found.returncode != 0:
        raise SystemExit(f"commit {sha} is not in the repository at {ROOT} (a shallow clone?)")
    archived = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", sha], capture_output=True, check=True
    )
    with tarfile.open(fileobj=io.BytesIO(archived.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tree", type=Path, default=ROOT, help="source tree to run (default: this checkout)"
    )
    parser.add_argument("--against", metavar="SHA", help="also run this commit of the repository")
    parser.add_argument(
        "--settle", type=float, default=2.0, help="seconds after start before the record is cleared"
    )
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args(argv)

    runs: list[tuple[str, Callable[[], list[str]]]] = [
        (str(args.tree.resolve()), lambda: measure(args.tree.resolve(), args.settle))
    ]
    results = []
    with tempfile.TemporaryDirectory(prefix="message-path-tree-") as tmp:
        if args.against:
            old = extract(args.against, Path(tmp))
            runs.append((f"{args.against} (git archive)", lambda: measure(old, args.settle)))
        for label, run in runs:
            results.append(report(label, run()))
    if len(results) == 2:
        new, old = results
        print(f"\nmodules on the path: {new['count']} now, {old['count']} at {args.against}")
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
