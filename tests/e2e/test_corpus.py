"""Real-world messages from public parser test suites (tests/corpus/, sources and licences in
tests/corpus/SOURCES.md), each sealed through one running ``sealmail serve`` and opened in
the portal by its recipient; at the end nothing waits in the queue.

Each message keeps its bytes (SMTP only makes its line endings CRLF); one header,
``X-Sealmail-Encrypt: yes``, is put in front so it goes to the portal with its own subject,
and the envelope is the tenant's sender and one recipient. Messages the product refuses at
SMTP are listed in ``REFUSED`` with the reason; any other refusal fails the test.
"""

from __future__ import annotations

import html
import json
import re
import smtplib
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.e2e.conftest import Product
from tests.e2e.mail import find_code
from tests.e2e.test_upgrade_from_previous import Visitor
from tests.helpers.smtp_sink import SmtpSink

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
SENDER = "alice@acme.example"
RECIPIENT = "bob@recipient.test"
SESSIONS = 4  # parallel SMTP sessions
# corpus path -> why the product refuses it at SMTP (the reply must contain the reason)
REFUSED: dict[str, str] = {}
_FAILED = re.compile(r"processing (\S+) failed: (.*)")


def corpus_files() -> list[Path]:
    return sorted(
        p
        for p in CORPUS.rglob("*")
        if p.is_file() and p.name not in ("SOURCES.md", ".gitattributes")
    )


def _sign_in(product: Product, sink: SmtpSink, link: str) -> Visitor:
    """Link -> code by mail -> a verified session (the page it lands on is checked with the
    others)."""
    path = link.removeprefix(product.portal_url)
    visitor = Visitor(product.portal_url)
    status, _, page = visitor.request(path)
    assert status == 200, page[:2000]
    found = re.search(r'name="csrf" value="([^"]+)"', page.decode())
    assert found, "no CSRF field on the entry page"
    csrf = html.unescape(found.group(1))
    seen = {id(m) for m in sink.messages}
    status, _, page = visitor.request(f"{path}/code", {"csrf": csrf})
    assert status == 200, page[:2000]
    code_mail = sink.wait_for(lambda m: RECIPIENT in m.rcpt_tos and id(m) not in seen)[-1]
    code = find_code(code_mail.data)
    status, _, page = visitor.request(f"{path}/verify", {"csrf": csrf, "code": code})
    assert status == 303, page[:2000]
    return visitor


def _send_all(port: int, creds: dict[str, str], files: list[Path]) -> dict[str, tuple[int, str]]:
    """One SMTP session sends ``files``: path -> (reply code, reply text)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    replies: dict[str, tuple[int, str]] = {}
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
        smtp.starttls(context=ctx)
        smtp.login(creds["smtp_username"], creds["smtp_password"])
        for path in files:
            name = str(path.relative_to(CORPUS))
            smtp.rset()
            code, text = smtp.mail(SENDER)
            if code == 250:
                code, text = smtp.rcpt(RECIPIENT)
            if code == 250:
                data = b"X-Sealmail-Encrypt: yes\r\n" + path.read_bytes()
                try:
                    code, text = smtp.data(data)
                except smtplib.SMTPDataError as err:
                    code, text = err.smtp_code, err.smtp_error
            replies[name] = (code, text.decode(errors="replace"))
    return replies


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_every_corpus_message_is_sealed_and_opens(product: Product, sink: SmtpSink) -> None:
    files = corpus_files()
    assert len(files) >= 100, f"only {len(files)} corpus messages"
    creds = product.create_tenant("Acme", "acme.example")
    product.start()

    started = time.monotonic()
    slices = [files[i::SESSIONS] for i in range(SESSIONS)]
    replies: dict[str, tuple[int, str]] = {}
    with ThreadPoolExecutor(SESSIONS) as pool:
        for part in pool.map(lambda fs: _send_all(product.smtp_port, creds, fs), slices):
            replies.update(part)
    queued = {n: re.search(r"queued as (\S+)", t) for n, (c, t) in replies.items() if c == 250}
    assert all(queued.values()), {n: replies[n] for n, m in queued.items() if not m}
    ids = {name: m.group(1) for name, m in queued.items() if m}
    refused = {n: r for n, r in replies.items() if r[0] != 250}
    unexpected = {n: r for n, r in refused.items() if n not in REFUSED or REFUSED[n] not in r[1]}
    assert not unexpected, f"refused at SMTP: {unexpected}"
    assert set(REFUSED) == set(refused), f"accepted after all: {set(REFUSED) - set(refused)}"

    # a notification for every message (or the pipeline's error for it in the log) ...
    by_id = {qid: name for name, qid in ids.items()}
    crashed: dict[str, str] = {}
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        notes = [m for m in sink.messages if RECIPIENT in m.rcpt_tos]
        crashed = {
            by_id[qid]: error for qid, error in _FAILED.findall(product.logs()) if qid in by_id
        }
        if len(notes) + len(crashed) >= len(ids):
            break
        time.sleep(0.5)
    assert notes, "no notification at all\n" + product.logs()[-5000:]
    # ... then the recipient signs in once and opens each message
    link = re.search(rf"{re.escape(product.portal_url)}/m/[A-Za-z0-9_-]+", notes[0].data.decode())
    assert link, "no portal link in the notification"
    visitor = _sign_in(product, sink, link.group(0))
    pending = {n: qid for n, qid in ids.items() if n not in crashed}
    failed: dict[str, int] = {}
    deadline = time.monotonic() + 60
    while pending and time.monotonic() < deadline:
        for name, qid in list(pending.items()):
            status, _, _ = visitor.request(f"/messages/{qid}")
            if status == 200:
                del pending[name]
                for download in ("download.eml", "download.pdf"):  # rebuilt from the parts
                    got, _, _ = visitor.request(f"/messages/{qid}/{download}")
                    if got != 200:
                        failed[f"{name} {download}"] = got
            elif status != 404:  # 404: not processed yet
                failed[name] = status
                del pending[name]
        if pending:
            time.sleep(0.5)
    assert not crashed and not failed and not pending, (
        f"the pipeline failed on {len(crashed)}: {crashed}\n"
        f"message pages that failed ({len(failed)}): {failed}\n"
        f"never reached the portal ({len(pending)}): {sorted(pending)}"
    )

    waiting: list[object] = ["?"]
    for _ in range(60):
        waiting = json.loads(product.cli("queue", "list", "--json").stdout)
        if not waiting:
            break
        time.sleep(0.5)
    assert waiting == [], waiting
    print(f"{len(ids)} corpus messages sealed and opened in {time.monotonic() - started:.0f} s")
