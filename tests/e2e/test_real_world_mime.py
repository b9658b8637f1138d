"""Real-world MIME through ``sealmail serve``: raw UTF-8 and Latin-1 bytes in headers,
encoded NULs, bogus charsets, missing and duplicate headers, broken base64 and
quoted-printable bodies and absurdly deep nesting.

Each message is sealed to the portal, its recipient is told, the message page opens
(200) showing what could be decoded (U+FFFD where bytes could not be), it is archived and
found by the archive search, and nothing of it is left in the queue.

One product serves every case (module scope): starting it is most of a case's cost.
"""

from __future__ import annotations

import html
import json
import smtplib
import ssl
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.e2e.conftest import Product
from tests.e2e.mail import find_link, parse
from tests.e2e.test_upgrade_from_previous import open_in_portal
from tests.helpers.smtp_sink import SmtpSink

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

SENDER = "alice@acme.example"
CRLF = b"\r\n"


@dataclass(frozen=True)
class Case:
    name: str
    headers: list[bytes]  # whole header lines, without line ends
    body: bytes
    shown: tuple[str, ...]  # must appear on the message page
    notified: str = ""  # must appear in the notification's Subject
    replaced: bool = False  # the page shows U+FFFD for bytes that could not be decoded
    smtputf8: bool = False

    def raw(self, rcpt: str) -> bytes:
        lines = [h.replace(b"RCPT", rcpt.encode()) for h in self.headers]
        return CRLF.join(lines) + CRLF + CRLF + self.body


def _nested(depth: int, leaf_text: str) -> tuple[list[bytes], bytes]:
    """A multipart/mixed ``depth`` levels deep with one text part at the bottom."""
    out: list[bytes] = []
    for level in range(depth - 1):
        out.append(f'Content-Type: multipart/mixed; boundary="b{level + 1}"\r\n\r\n'.encode())
        out.append(f"--b{level + 1}\r\n".encode())
    out.append(f"Content-Type: text/plain; charset=utf-8\r\n\r\n{leaf_text}\r\n".encode())
    for level in reversed(range(depth - 1)):
        out.append(f"--b{level + 1}--\r\n".encode())
    top = b'Content-Type: multipart/mixed; boundary="b0"'
    body = b"--b0\r\n" + b"".join(out) + b"--b0--\r\n"
    return [b"MIME-Version: 1.0", top], body


_BASE = [b"Date: Fri, 04 Dec 2026 10:00:00 +0000", b"Message-ID: <m@acme.example>"]
_PLAIN = [b"MIME-Version: 1.0", b"Content-Type: text/plain; charset=utf-8"]
_DEEP_200 = _nested(200, "Bottom of two hundred levels")
_DEEP_2000 = _nested(2000, "Bottom of two thousand levels")

CASES = [
    Case(
        "utf8-headers",
        [
            "From: Jürgen Müller <alice@acme.example>".encode(),
            "To: Bøb Ünïcode <RCPT>".encode(),
            "Cc: Zoë <zoe@recipient.test>".encode(),
            "Subject: [secure] Grüße aus Köln ☃".encode(),
            *_BASE,
            *_PLAIN,
        ],
        "Der Bericht liegt bei. Grüße.\r\n".encode(),
        shown=("Grüße aus Köln ☃", "Jürgen Müller", "Bøb Ünïcode", "Zoë", "Der Bericht"),
        notified="Grüße aus Köln ☃",
        smtputf8=True,
    ),
    Case(
        "latin1-headers",
        [
            "From: Jürgen Müller <alice@acme.example>".encode("latin-1"),
            "To: Bøb <RCPT>".encode("latin-1"),
            "Cc: Zoë <zoe@recipient.test>".encode("latin-1"),
            "Subject: [secure] Grüße aus Köln".encode("latin-1"),
            *_BASE,
            *_PLAIN,
        ],
        b"Latin body follows.\r\n",
        shown=("Gr\ufffd\ufffde aus K\ufffdln", "J\ufffdrgen", "Latin body follows."),
        notified="aus K",
        replaced=True,
    ),
    Case(
        "encoded-nul",
        [
            b"From: =?utf-8?q?Al=00ice?= <alice@acme.example>",
            b"To: =?utf-8?q?B=00ob?= <RCPT>",
            b"Cc: =?utf-8?q?C=00c?= <cc@recipient.test>",
            b"Subject: [secure] =?utf-8?q?nul=00here?=",
            *_BASE,
            *_PLAIN,
        ],
        b"Body with a NUL-free text.\r\n",
        shown=("nul", "here", "Body with a NUL-free text."),
        notified="nul",
    ),
    Case(
        "bogus-charset",
        [
            b"From: =?x-unknown?q?Al=E9x?= <alice@acme.example>",
            b"To: <RCPT>",
            b"Subject: [secure] =?x-unknown?q?caf=E9_menu?=",
            *_BASE,
            b"MIME-Version: 1.0",
            b"Content-Type: text/plain; charset=bogus",
        ],
        b"Menu du caf\xe9 attached.\r\n",
        shown=("caf", "menu", "Menu du caf"),
        notified="menu",
        replaced=True,
    ),
    Case(
        "missing-headers",
        [b"To: <RCPT>", b"X-Sealmail-Encrypt: yes"],
        b"No From, no Subject, no Date, no Content-Type.\r\n",
        shown=("No From, no Subject",),
    ),
    Case(
        "duplicate-headers",
        [
            b"From: First Sender <alice@acme.example>",
            b"From: Second Sender <mallory@acme.example>",
            b"To: <RCPT>",
            b"Subject: [secure] First subject",
            b"Subject: Second subject",
            *_BASE,
            *_PLAIN,
        ],
        b"Two of each.\r\n",
        shown=("First subject", "First Sender", "Two of each."),
        notified="First subject",
    ),
    Case(
        "broken-base64",
        [
            b"From: <alice@acme.example>",
            b"To: <RCPT>",
            b"Subject: [secure] Broken base64",
            *_BASE,
            b"MIME-Version: 1.0",
            b'Content-Type: multipart/mixed; boundary="x"',
        ],
        b"--x\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        b"SGVsbG8gYmFzZTY0IHdvcmxk!!*\r\nQ\r\n"
        b"--x\r\nContent-Type: application/pdf\r\n"
        b'Content-Disposition: attachment; filename="r.pdf"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        b"JVBERi0xLjQK@@@\r\nJVBER\r\nx\r\n--x--\r\n",
        shown=("Hello base64 world", "r.pdf"),
        notified="Broken base64",
    ),
    Case(
        "broken-quoted-printable",
        [
            b"From: <alice@acme.example>",
            b"To: <RCPT>",
            b"Subject: [secure] Broken QP",
            *_BASE,
            b"MIME-Version: 1.0",
            b"Content-Type: text/plain; charset=utf-8",
            b"Content-Transfer-Encoding: quoted-printable",
        ],
        b"Caf=C3=A9 =ZZ bad =4 escape =\r\nsoft=C3\r\nend=\r\n",
        shown=("Café", "bad", "escape", "end"),
        notified="Broken QP",
        replaced=True,  # =C3 alone is half a UTF-8 character
    ),
    Case(
        "attachment-names",
        [
            b"From: <alice@acme.example>",
            b"To: <RCPT>",
            b"Subject: [secure] Attachment names",
            *_BASE,
            b"MIME-Version: 1.0",
            b'Content-Type: multipart/mixed; boundary="x"',
        ],
        b"--x\r\nContent-Type: text/plain\r\n\r\nThree files.\r\n"
        b"--x\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; "
        b'filename="r\xe9sum\xe9.pdf"\r\n\r\n%PDF-1.4\r\n'
        b"--x\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; "
        b'filename="=?utf-8?q?gr=C3=BC=00n.txt?="\r\n\r\ngreen\r\n'
        b"--x\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; "
        b"filename*=bogus''%FF%00.txt\r\nContent-ID: <\xff@x>\r\n\r\nodd\r\n--x--\r\n",
        shown=("r\ufffdsum\ufffd.pdf", "gr\u00fc n.txt", "Three files."),
        notified="Attachment names",
        replaced=True,
    ),
    Case(
        "nested-200",
        [
            b"From: <alice@acme.example>",
            b"To: <RCPT>",
            b"Subject: [secure] Two hundred levels",
            *_BASE,
            *_DEEP_200[0],
        ],
        _DEEP_200[1],
        shown=("Two hundred levels", "not shown"),
        notified="Two hundred levels",
    ),
    Case(
        "nested-2000",
        [
            b"From: <alice@acme.example>",
            b"To: <RCPT>",
            b"Subject: [secure] Two thousand levels",
            *_BASE,
            *_DEEP_2000[0],
        ],
        _DEEP_2000[1],
        shown=("Two thousand levels", "not shown"),
        notified="Two thousand levels",
    ),
]


@pytest.fixture(scope="module")
def sink_m() -> Iterator[SmtpSink]:
    with SmtpSink() as s:
        yield s


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, sink_m: SmtpSink) -> Iterator[Product]:
    product = Product(tmp_path_factory.mktemp("mime") / "sealmail", sink_m.port)
    product.init()
    product.tenant = product.create_tenant("Acme", "acme.example")  # type: ignore[attr-defined]
    product.start()
    yield product
    assert product.stop() == 0


def _send_raw(product: Product, raw: bytes, rcpt: str, smtputf8: bool) -> None:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    tenant = product.tenant  # type: ignore[attr-defined]
    with smtplib.SMTP("127.0.0.1", product.smtp_port, timeout=60) as smtp:
        smtp.starttls(context=ctx)
        smtp.login(tenant["smtp_username"], tenant["smtp_password"])
        options = ["SMTPUTF8", "BODY=8BITMIME"] if smtputf8 else ["BODY=8BITMIME"]
        refused = smtp.sendmail(SENDER, [rcpt], raw, mail_options=options)
        assert refused == {}


def _archive_search(product: Product, rcpt: str) -> list[dict]:
    query = urllib.parse.urlencode({"to": rcpt})
    req = urllib.request.Request(
        f"{product.portal_url}/api/v1/archive/search?{query}",
        headers={"Authorization": f"Bearer {product.tenant['api_key']}"},  # type: ignore[attr-defined]
    )
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - loopback
        return json.loads(resp.read())["items"]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_real_world_message_is_sealed_shown_and_archived(
    served: Product, sink_m: SmtpSink, case: Case
) -> None:
    rcpt = f"{case.name}@recipient.test"
    _send_raw(served, case.raw(rcpt), rcpt, case.smtputf8)

    note = sink_m.wait_for(lambda m: rcpt in m.rcpt_tos, timeout=30)[0]
    notification = parse(note.data)
    subject = str(notification["Subject"])
    assert "[secure]" not in subject and "\x00" not in subject
    assert case.notified in subject, subject
    link = find_link(note.data, served.portal_url)

    _visitor, _path, page = open_in_portal(served, sink_m, link, rcpt)
    text = html.unescape(page)
    for shown in case.shown:
        assert shown in text, (shown, text[-3000:])
    assert "\x00" not in text
    assert ("\ufffd" in text) is case.replaced
    assert "[secure]" not in text

    deadline = time.monotonic() + 30
    while not (found := _archive_search(served, rcpt)):
        assert time.monotonic() < deadline, "never archived"
        time.sleep(0.2)
    assert len(found) == 1 and found[0]["decision"] == "portal", found
    assert case.notified in found[0]["subject"] and "\x00" not in found[0]["subject"], found

    # nothing left waiting: no retry of the message, no notification or code mail queued
    deadline = time.monotonic() + 10
    while waiting := json.loads(served.cli("queue", "list", "--json").stdout):
        assert time.monotonic() < deadline, waiting
        time.sleep(0.2)
    assert "Traceback" not in served.logs(), served.logs()[-4000:]
