"""The load of ``bench/soak.py``: the counting sink that stands in for the relay, the SMTP
sessions and the portal readers. Each runs in its own thread until a shared deadline and
reports to a :class:`bench.soak_report.Recorder`; every wait is bounded by ``WAIT``."""

from __future__ import annotations

import base64
import html
import http.client
import random
import re
import smtplib
import threading
import time
import urllib.parse
from email.parser import BytesParser
from email.policy import default as default_policy

from bench.message_path import free_port, text_of
from bench.soak_report import Recorder
from tests.reliability.load import sizes

SENDER = "alice@acme.example"
PLAIN_RCPT = "partner@partner.example"
SUBJECT_ID = re.compile(r"soak-(\d+-\d+)")
CODE = re.compile(r"\b(\d{6,10})\b")
WAIT = 60.0  # seconds: every single wait (a reply, a port, a mail) is bounded by this


def reader_address(n: int) -> str:
    return f"reader{n}@partner.example"


# --- the relay: a sink that counts and keeps only what readers need --------------------


class CountingSink:
    """An aiosmtpd server on loopback. It keeps, per message id in a subject, when it was
    delivered (plain) or notified (sealed); for the readers, the portal links and codes
    mailed to each address. Message bodies are dropped, so memory stays small."""

    def __init__(self, recorder: Recorder, portal_url: str) -> None:
        from aiosmtpd.controller import Controller

        self.recorder = recorder
        self.delivered: dict[str, float] = {}
        self.notified: dict[str, float] = {}
        self.links: dict[str, list[str]] = {}
        self.codes: dict[str, list[str]] = {}
        self.strays = 0
        self.cond = threading.Condition()
        link = re.compile(re.escape(portal_url) + r"(/m/[A-Za-z0-9_\-]+)")
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: ANN001
                sink._received(list(envelope.rcpt_tos), envelope.content, link)
                return "250 2.0.0 stored"

        self.port = free_port()
        self.controller = Controller(
            Handler(), hostname="127.0.0.1", port=self.port, data_size_limit=None
        )

    def _received(self, rcpts: list[str], data: bytes, link: re.Pattern[str]) -> None:
        head = BytesParser(policy=default_policy).parsebytes(data[:65536], headersonly=True)
        subject = str(head.get("Subject", ""))
        found = SUBJECT_ID.search(subject)
        now = time.monotonic()
        with self.cond:
            book = self.notified if subject.startswith("Secure message") else self.delivered
            if found and found.group(1) in book:
                self.recorder.count("duplicate")  # a second copy of one message
            if found and subject.startswith("Secure message"):
                self.notified[found.group(1)] = now
                self.recorder.count("delivered")
                for rcpt in rcpts:
                    self.links.setdefault(rcpt.lower(), []).extend(link.findall(text_of(data))[:1])
            elif found:
                self.delivered[found.group(1)] = now
                self.recorder.count("delivered")
            elif subject.startswith("Your code"):
                for rcpt in rcpts:
                    self.codes.setdefault(rcpt.lower(), []).extend(CODE.findall(text_of(data))[:1])
            else:
                self.strays += 1
            self.cond.notify_all()

    def wait(self, book: dict[str, list[str]], rcpt: str, after: int, until: float) -> str | None:
        """The first entry for ``rcpt`` beyond the first ``after``, or None at ``until``."""
        with self.cond:
            while len(book.get(rcpt, [])) <= after:
                left = until - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(min(left, 1.0))
            return book[rcpt][after]

    def __enter__(self) -> CountingSink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


# --- SMTP sessions -----------------------------------------------------------------------

_FILL = base64.encodebytes(random.Random(11).randbytes(160_000)).replace(b"\n", b"\r\n")


def build_message(uid: str, size: int, secure: bool, rcpt: str) -> bytes:
    subject = f"{'[secure] ' if secure else ''}soak-{uid}"
    head = (
        f"From: Alice <{SENDER}>\r\nTo: <{rcpt}>\r\nSubject: {subject}\r\n"
        f"Message-ID: <{uid}.{time.time_ns()}@soak.test>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
    ).encode()
    body = (_FILL * (size // len(_FILL) + 1))[: max(0, size - len(head))]
    return head + body[: body.rfind(b"\r\n") + 2]


class Mix:
    """Which message comes next: a shared counter so secure mail reaches every reader in
    turn (each reader's first notification comes early), sizes from one seeded sequence."""

    def __init__(self, readers: int, secure_share: float, seed: int = 5) -> None:
        self.readers = readers
        self.secure_share = secure_share
        self.sizes = sizes(4096, 10_000, 200_000, seed)
        self.rnd = random.Random(seed)
        self.n = self.secure_n = 0
        self.lock = threading.Lock()

    def next(self, session: int) -> tuple[str, int, bool, str]:
        with self.lock:
            self.n += 1
            uid = f"{session}-{self.n}"
            size = self.sizes[self.n % len(self.sizes)]
            secure = self.readers > 0 and self.rnd.random() < self.secure_share
            rcpt = PLAIN_RCPT
            if secure:
                rcpt = reader_address(self.secure_n % self.readers)
                self.secure_n += 1
        return uid, size, secure, rcpt


def smtp_session(n: int, port: int, mix: Mix, rec: Recorder, stop_at: float, pause: float) -> None:
    smtp: smtplib.SMTP | None = None
    while time.monotonic() < stop_at:
        uid, size, secure, rcpt = mix.next(n)
        data = build_message(uid, size, secure, rcpt)
        t0 = time.monotonic()
        try:
            if smtp is None:
                smtp = smtplib.SMTP("127.0.0.1", port, timeout=WAIT)
                smtp.ehlo("soak.test")
            code, _ = smtp.mail(SENDER, [f"SIZE={len(data)}"])
            if code == 250:
                code, _ = smtp.rcpt(rcpt)
            if code == 250:
                code, _ = smtp.data(data)
            if code == 250:
                rec.accepted(uid, secure, time.monotonic() - t0)
            else:
                rec.error(f"smtp {code // 100}xx")
                smtp = _close(smtp)
                time.sleep(0.5)
        except TimeoutError:
            rec.error("smtp timeout")
            smtp = _close(smtp)
        except (smtplib.SMTPException, OSError) as exc:
            code = getattr(exc, "smtp_code", 0)
            rec.error(f"smtp {code // 100}xx" if code else "smtp connection")
            smtp = _close(smtp)
            time.sleep(0.5)
        time.sleep(pause)
    if smtp is not None:
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            _close(smtp)


def _close(smtp: smtplib.SMTP | None) -> None:
    if smtp is not None:
        try:
            smtp.close()
        except OSError:
            pass
    return None


# --- portal readers ------------------------------------------------------------------------


class Browser:
    """HTTP/1.1 with keep-alive from one loopback source address; the portal's cookies are
    ``Secure`` (a cookie jar would not send them to ``http://``), so they are kept by name."""

    def __init__(self, port: int, source: str, rec: Recorder) -> None:
        self.port, self.source, self.rec = port, source, rec
        self.origin = f"http://127.0.0.1:{port}"
        self.cookies: dict[str, str] = {}
        self.conn: http.client.HTTPConnection | None = None

    def request(self, path: str, form: dict[str, str] | None = None) -> tuple[int, str, str]:
        """(status, Location, body) of one request; status 0 on a timeout or lost connection."""
        headers = {"Origin": self.origin} if form is not None else {}
        if form is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = urllib.parse.urlencode(form) if form is not None else None
        t0 = time.monotonic()
        for attempt in (1, 2):
            reused = self.conn is not None
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(
                        "127.0.0.1", self.port, timeout=WAIT, source_address=(self.source, 0)
                    )
                self.conn.request("POST" if form is not None else "GET", path, body, headers)
                resp = self.conn.getresponse()
                data = resp.read().decode(errors="replace")
                break
            except TimeoutError:
                self.rec.error("http timeout")
                self._drop()
                return 0, "", ""
            except (http.client.HTTPException, OSError):
                self._drop()
                # the server closed an idle keep-alive connection: a browser sends again
                # on a new one, and so does this, once
                if not (reused and attempt == 1):
                    self.rec.error("http connection")
                    return 0, "", ""
        for line in resp.headers.get_all("Set-Cookie") or []:
            name, _, rest = line.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        if form is None:
            self.rec.page(time.monotonic() - t0, resp.status)
        return resp.status, resp.headers.get("Location", ""), data

    def _drop(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn = None


def portal_reader(
    n: int, port: int, sink: CountingSink, rec: Recorder, stop_at: float, think: float
) -> None:
    addr = reader_address(n)
    browser = Browser(port, f"127.0.{1 + n // 250}.{1 + n % 250}", rec)
    try:
        link = sink.wait(sink.links, addr, 0, stop_at)
        if link is None:
            rec.count("reader_without_mail")  # no sealed mail reached it during the run
            return
        failed = _sign_in(browser, link, addr, sink, stop_at)
        if failed:
            rec.error(f"sign-in failed: {failed}")
            return
        rec.count("signed_in")
        pages: list[str] = []
        turn = 0
        while time.monotonic() < stop_at:
            status, _, body = browser.request("/inbox")
            if status == 200:
                pages = sorted(set(re.findall(r'href="(/messages/[A-Za-z0-9_\-]+)"', body)))
            time.sleep(think)
            for _ in range(3):
                if not pages or time.monotonic() >= stop_at:
                    break
                browser.request(pages[turn % len(pages)])
                turn += 1
                time.sleep(think)
    finally:
        browser._drop()


def _sign_in(browser: Browser, link: str, addr: str, sink: CountingSink, until: float) -> str:
    """Open the link, have a code mailed, enter it; the step that failed, or ""."""
    status, _, page = browser.request(link)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    if status != 200 or csrf is None:
        return f"link {status}"
    form = {"csrf": html.unescape(csrf.group(1))}
    with sink.cond:
        before = len(sink.codes.get(addr, []))
    status, _, page = browser.request(f"{link}/code", form)
    if status not in (200, 303):
        return f"code request {status}"
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    if csrf is not None:
        form = {"csrf": html.unescape(csrf.group(1))}
    code = sink.wait(sink.codes, addr, before, max(until, time.monotonic() + WAIT))
    if code is None:
        return "no code mail"
    status, location, _ = browser.request(f"{link}/verify", {**form, "code": code})
    return "" if status == 303 and "/messages/" in location else f"verify {status}"


def lost_messages(rec: Recorder, sink: CountingSink) -> list[str]:
    with rec.lock, sink.cond:
        return [
            uid
            for uid, secure in rec.accepted_ids.items()
            if uid not in (sink.notified if secure else sink.delivered)
        ]
