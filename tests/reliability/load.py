"""Load for the reliability tests: messages with a unique id, senders that behave like a
real MTA (retry on 4xx and on a lost connection, give up on 5xx), and a tally of what
reached the sink.

Every attempt carries ``X-Test-Id`` (the message) and ``X-Test-Attempt`` (which try), so
a copy at the sink says both which message it is and which SMTP transaction it came from.
Two copies of the same attempt are a duplicate made by delivery; copies of two attempts
are a duplicate SMTP itself allows (the sender lost the connection after sending the data
and before the reply, RFC 5321 section 6.1, and sent again).
"""

from __future__ import annotations

import base64
import dataclasses
import math
import queue
import random
import re
import smtplib
import threading
import time
from collections import Counter, defaultdict

from tests.helpers.smtp_sink import SmtpSink

SENDER = "alice@acme.example"
_ID = re.compile(rb"^X-Test-Id: (\S+)\r?$", re.M)
_ATTEMPT = re.compile(rb"^X-Test-Attempt: (\d+)\r?$", re.M)


def _filler(size: int) -> bytes:
    text = base64.encodebytes(random.Random(7).randbytes(size * 3 // 4 + 100))
    return text.replace(b"\n", b"\r\n")


_FILL = _filler(2_100_000)
_LINE = 78  # 76 characters + CRLF


def sizes(count: int, low: int, high: int, seed: int) -> list[int]:
    """``count`` sizes between ``low`` and ``high``, log-uniform (many small, some big)."""
    rnd = random.Random(seed)
    return [int(math.exp(rnd.uniform(math.log(low), math.log(high)))) for _ in range(count)]


def message(uid: str, attempt: int, size: int, rcpt: str) -> bytes:
    head = (
        f"From: Alice <{SENDER}>\r\nTo: <{rcpt}>\r\nSubject: load {uid}\r\n"
        f"Message-ID: <{uid}@load.test>\r\nX-Test-Id: {uid}\r\nX-Test-Attempt: {attempt}\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
    ).encode()
    lines = max(1, (size - len(head)) // _LINE)
    return head + _FILL[: lines * _LINE]


@dataclasses.dataclass
class Job:
    uid: str
    size: int
    rcpts: list[str]
    port: int


class Senders:
    """``sessions`` threads, each one SMTP session at a time, sending jobs from a queue
    and retrying each until it gets a 250 (or a 5xx, which is recorded and never retried).
    A connection is reused for the next message, as an MTA does."""

    def __init__(self, jobs: list[Job], sessions: int, deadline: float, pause: float = 0.0) -> None:
        self.jobs: queue.Queue[Job] = queue.Queue()
        self.rcpts = {job.uid: job.rcpts for job in jobs}
        self.pause = pause
        for job in jobs:
            self.jobs.put(job)
        self.total = len(jobs)
        self.sessions = sessions
        self.deadline = deadline
        self.lock = threading.Lock()
        self.accepted: dict[str, int] = {}  # uid -> the attempt that got the 250
        self.ambiguous: set[tuple[str, int]] = set()  # connection lost after the data
        self.permanent: list[tuple[str, int, str]] = []  # every 5xx seen
        self.replies: Counter[int] = Counter()  # every reply code other than 250/354
        self.refused_connects = 0
        self.accept_times: list[float] = []
        self.threads = [
            threading.Thread(target=self._run, name=f"sender-{i}", daemon=True)
            for i in range(sessions)
        ]

    def start(self) -> Senders:
        for t in self.threads:
            t.start()
        return self

    def join(self) -> None:
        for t in self.threads:
            t.join(timeout=max(1.0, self.deadline - time.monotonic() + 30))

    @property
    def done(self) -> bool:
        return not any(t.is_alive() for t in self.threads)

    def _note(self, code: int, uid: str, text: bytes | str) -> None:
        with self.lock:
            self.replies[code] += 1
            if code >= 500:
                self.permanent.append((uid, code, str(text)[:200]))

    def _run(self) -> None:
        smtp: smtplib.SMTP | None = None
        while time.monotonic() < self.deadline:
            try:
                job = self.jobs.get_nowait()
            except queue.Empty:
                break
            smtp = self._send(job, smtp)
            time.sleep(self.pause)
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()

    def _send(self, job: Job, smtp: smtplib.SMTP | None) -> smtplib.SMTP | None:
        attempt = 0
        rnd = random.Random(job.uid)
        while time.monotonic() < self.deadline:
            attempt += 1
            in_data = False
            try:
                if smtp is None:
                    smtp = smtplib.SMTP("127.0.0.1", job.port, timeout=60)
                    smtp.ehlo("load.test")
                code, text = smtp.mail(SENDER, [f"SIZE={job.size}"])
                if code == 250:
                    for rcpt in job.rcpts:
                        code, text = smtp.rcpt(rcpt)
                        if code != 250:
                            break
                if code == 250:
                    code, text = smtp.docmd("DATA")
                    if code == 354:
                        in_data = True
                        smtp.send(_dot_stuffed(message(job.uid, attempt, job.size, job.rcpts[0])))
                        code, text = smtp.getreply()
                        in_data = False
                if code == 250:
                    with self.lock:
                        self.accepted[job.uid] = attempt
                        self.accept_times.append(time.monotonic())
                    return smtp
                self._note(code, job.uid, text)
                if code >= 500:
                    return self._drop(smtp)  # a real MTA bounces; the test fails on it
                smtp = self._drop(smtp)  # 4xx: try again later on a new connection
            except (smtplib.SMTPException, OSError):
                if in_data:
                    with self.lock:
                        self.ambiguous.add((job.uid, attempt))
                if smtp is None:
                    with self.lock:
                        self.refused_connects += 1
                smtp = self._drop(smtp)
            time.sleep(rnd.uniform(0.2, 0.8))
        return smtp

    @staticmethod
    def _drop(smtp: smtplib.SMTP | None) -> None:
        if smtp is not None:
            try:
                smtp.close()
            except OSError:
                pass
        return None


def _dot_stuffed(data: bytes) -> bytes:
    data = re.sub(rb"(?m)^\.", b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


@dataclasses.dataclass
class Tally:
    copies: dict[str, list[int]]  # "uid rcpt" -> the attempt number of each copy at the sink
    lost: list[str]
    delivery_duplicates: int  # extra copies of one SMTP transaction
    resend_duplicates: int  # copies of a second transaction after an ambiguous first
    unexplained: int  # copies of an attempt that was neither accepted nor ambiguous
    strays: int  # copies with no test id (bounces, notifications)


def tally(sink: SmtpSink, senders: Senders) -> Tally:
    with sink._lock:
        received = list(sink.messages)
    copies: dict[str, list[int]] = defaultdict(list)
    strays = 0
    for m in received:
        head = m.data[:16384]
        uid, att = _ID.search(head), _ATTEMPT.search(head)
        if uid is None or att is None:
            strays += 1
            continue
        for rcpt in m.rcpt_tos:
            copies[f"{uid.group(1).decode()} {rcpt}"].append(int(att.group(1)))
    lost = [
        f"{uid} {rcpt}"
        for uid in senders.accepted
        for rcpt in senders.rcpts[uid]
        if f"{uid} {rcpt}" not in copies
    ]
    delivery = resend = unexplained = 0
    for key, atts in copies.items():
        uid = key.split(" ", 1)[0]
        for att, n in Counter(atts).items():
            delivery += n - 1
            if senders.accepted.get(uid) == att:
                continue
            if (uid, att) in senders.ambiguous:
                resend += 1
            else:
                unexplained += 1
    return Tally(dict(copies), lost, delivery, resend, unexplained, strays)


def wait_delivered(
    sink: SmtpSink, senders: Senders, timeout: float, quiet: float = 60.0, cap: float = 900.0
) -> Tally:
    """Wait until every accepted message is at the sink; the tally. A message counts as
    lost only once delivery has stopped: after ``timeout``, waiting goes on while mail
    still arrives (a slow machine is not a lost message), until nothing has arrived for
    ``quiet`` seconds or ``cap`` seconds in all."""
    start = time.monotonic()
    last_count, last_change = -1, start
    while True:
        t = tally(sink, senders)
        now = time.monotonic()
        with sink._lock:
            count = len(sink.messages)
        if count != last_count:
            last_count, last_change = count, now
        if not t.lost:
            return t
        if now - start > timeout and (now - last_change > quiet or now - start > cap):
            return t
        time.sleep(0.5)
