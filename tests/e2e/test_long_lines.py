"""Lines longer than 998 octets through ``sealmail serve`` (issue 11, item 3).

Intake accepts lines up to 64 KiB, as Postfix accepts long lines; what goes to the next
hop never has a line over 998 octets: the parts with long lines are re-encoded
(text as quoted-printable, anything else as base64) and decode to the same content,
while the archive keeps the bytes as they came. The relay here is a stock aiosmtpd sink,
which itself refuses DATA lines over 998 octets, as a strict next hop would. A line over
64 KiB gets ``500 5.5.2`` and the next message on the same connection is still taken.
"""

from __future__ import annotations

import html
import json
import smtplib
import ssl
import subprocess
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Product
from tests.e2e.mail import find_link, parse
from tests.e2e.test_policy import _cert, _gpg_decrypt, _gpg_export, _gpg_home, _kill_agent, _policy
from tests.e2e.test_upgrade_from_previous import open_in_portal
from tests.helpers.smtp_sink import SmtpSink

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

SENDER = "alice@acme.example"
CRLF = b"\r\n"
LONG = 20_000


def _line(unit: str, marker: str, size: int = LONG) -> bytes:
    """One line of exactly ``size`` octets of whole ``unit``s, padded, ending in ``marker``."""
    chunk = unit.encode()
    body = chunk * ((size - len(marker)) // len(chunk))
    return body + b"x" * (size - len(marker) - len(body)) + marker.encode()


PLAIN = _line("Zahlen für Q3 – geprüft; ", "END-OF-PLAIN")
HTML = b"<html><body><p>" + _line("<b>Zelle</b> &amp; mehr ", "END-OF-HTML</p>", LONG - 15)
DATA = _line("a,b,c,12.5,", "END-OF-CSV", 5_000)
REFS = " ".join(f"<{i}.thread@acme.example>" for i in range(500))  # one 12,000-octet line


def _raw(rcpt: str, subject: str, msgid: str, *extra: str) -> bytes:
    head = [
        *extra,
        f"From: Alice <{SENDER}>",
        f"To: <{rcpt}>",
        f"Subject: {subject}",
        "Date: Fri, 04 Dec 2026 10:00:00 +0000",
        f"Message-ID: <{msgid}@acme.example>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="outer"',
    ]
    body = (
        b"--outer\r\n"
        b'Content-Type: multipart/alternative; boundary="alt"\r\n\r\n'
        b"--alt\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n" + PLAIN + b"\r\nsecond line  \r\n"
        b"--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + HTML + b"\r\n"
        b"--alt--\r\n"
        b"--outer\r\nContent-Type: application/octet-stream\r\n"
        b'Content-Disposition: attachment; filename="figures.csv"\r\n'
        b"Content-Transfer-Encoding: 8bit\r\n\r\n" + DATA + b"\r\n"
        b"--outer--\r\n"
    )
    return "\r\n".join(head).encode() + CRLF + CRLF + body


def _smtp(product: Product) -> smtplib.SMTP:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    smtp = smtplib.SMTP("127.0.0.1", product.smtp_port, timeout=60)
    smtp.starttls(context=ctx)
    tenant = product.tenant  # type: ignore[attr-defined]
    smtp.login(tenant["smtp_username"], tenant["smtp_password"])
    return smtp


def _send(product: Product, raw: bytes, rcpt: str) -> None:
    with _smtp(product) as smtp:
        smtp.mail(SENDER, ["BODY=8BITMIME"])
        smtp.rcpt(rcpt)
        code, text = smtp.data(raw)
        assert code == 250 and text.startswith(b"2.0.0 queued as"), (code, text)


def _assert_fits(data: bytes) -> None:
    """Bytes-level: CRLF line breaks only, and none of the lines over 998 octets."""
    assert data.count(b"\n") == data.count(CRLF) == data.count(b"\r")
    longest = max(map(len, data.split(CRLF)))
    assert longest <= 998, longest


@pytest.fixture(scope="module")
def sink_m() -> Iterator[SmtpSink]:
    with SmtpSink() as s:
        yield s


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, sink_m: SmtpSink) -> Iterator[Product]:
    product = Product(tmp_path_factory.mktemp("lines") / "sealmail", sink_m.port)
    product.init()
    product.tenant = product.create_tenant("Acme", "acme.example")  # type: ignore[attr-defined]
    product.start()
    yield product
    assert product.stop() == 0


def test_clear_copy_is_reencoded_to_fit_and_decodes_the_same(
    served: Product, sink_m: SmtpSink, tmp_path: Path
) -> None:
    rcpt = "carol@recipient.test"
    raw = _raw(rcpt, "Quarterly figures", "clear", f"References: {REFS}")
    assert max(map(len, raw.split(CRLF))) == LONG
    _send(served, raw, rcpt)

    got = sink_m.wait_for(lambda m: rcpt in m.rcpt_tos, timeout=30)[0].data
    _assert_fits(got)
    msg = parse(got)
    assert str(msg["Subject"]) == "Quarterly figures"
    folded = got[got.index(b"References: ") :].split(b"\r\nFrom:")[0]
    assert folded.count(CRLF) >= 12 and folded.replace(CRLF, b"") == f"References: {REFS}".encode()
    plain, page = (p for p in msg.walk() if p.get_content_maintype() == "text")
    assert plain["Content-Transfer-Encoding"] == "quoted-printable"
    assert plain.get_content().replace("\r\n", "\n") == PLAIN.decode() + "\nsecond line  "
    assert page["Content-Transfer-Encoding"] == "quoted-printable"
    assert page.get_content().replace("\r\n", "\n") == HTML.decode()
    (csv,) = (p for p in msg.walk() if p.get_filename() == "figures.csv")
    assert csv["Content-Transfer-Encoding"] == "base64"
    assert csv.get_payload(decode=True) == DATA

    # the archive keeps the message as it came, long lines and all
    deadline = time.monotonic() + 30
    out = tmp_path / "acme.zip"
    while True:
        served.cli("archive", "export", "Acme", "--format", "zip", "--output", str(out))
        with zipfile.ZipFile(out) as zf:
            manifest = json.loads(zf.read("manifest.json"))
            kept = [zf.read(f["file"]) for f in manifest["files"]]
        if any(b"<clear@acme.example>" in k for k in kept):
            break
        assert time.monotonic() < deadline, "never archived"
        time.sleep(0.3)
    (original,) = (k for k in kept if b"<clear@acme.example>" in k)
    assert original.endswith(raw[raw.index(b"Date:") :]), original[:500]
    assert f"References: {REFS}\r\n".encode() in original  # not folded either


def test_sealed_message_with_long_lines_is_shown_in_the_portal(
    served: Product, sink_m: SmtpSink
) -> None:
    rcpt = "bob@recipient.test"
    _send(served, _raw(rcpt, "[secure] Quarterly figures", "sealed"), rcpt)

    note = sink_m.wait_for(lambda m: rcpt in m.rcpt_tos, timeout=30)[0]
    _assert_fits(note.data)
    link = find_link(note.data, served.portal_url)
    visitor, path, page = open_in_portal(served, sink_m, link, rcpt)
    assert "figures.csv" in page
    status, _, body = visitor.request(f"{path}/body")  # the HTML part, in its frame
    assert status == 200 and b"END-OF-HTML" in body
    assert html.unescape(body.decode()).count("<b>Zelle</b> & mehr") == HTML.count(b"<b>Zelle")
    status, _, plain = visitor.request(f"{path}?view=text")
    assert status == 200
    text = html.unescape(plain.decode())
    assert PLAIN.decode() in text, text[-3000:]
    assert "Traceback" not in served.logs(), served.logs()[-4000:]


def test_line_over_64_kib_is_refused_and_the_session_goes_on(
    served: Product, sink_m: SmtpSink
) -> None:
    rcpt = "dave@recipient.test"
    too_long = (
        f"From: <{SENDER}>\r\nTo: <{rcpt}>\r\nSubject: too long\r\n\r\n".encode()
        + b"y" * 70_000
        + CRLF
    )
    fine = _raw(rcpt, "After the refusal", "after")
    with _smtp(served) as smtp:
        smtp.mail(SENDER, ["BODY=8BITMIME"])
        smtp.rcpt(rcpt)
        code, text = smtp.data(too_long)
        assert (code, text[:22]) == (500, b"5.5.2 line too long (o"), (code, text)
        smtp.rset()
        smtp.mail(SENDER, ["BODY=8BITMIME"])
        smtp.rcpt(rcpt)
        code, text = smtp.data(fine)
        assert code == 250, (code, text)

    got = sink_m.wait_for(lambda m: rcpt in m.rcpt_tos, timeout=30)
    assert len(got) == 1 and b"After the refusal" in got[0].data
    _assert_fits(got[0].data)
    assert b"too long" not in got[0].data


def test_pgp_and_smime_output_fit_and_decrypt_to_the_long_lines(
    served: Product, sink_m: SmtpSink, tmp_path: Path
) -> None:
    erin = _gpg_home(tmp_path, "Erin <erin@recipient.test>")
    try:
        served.cli("keys", "import", "Acme", str(_gpg_export(erin, tmp_path / "erin.asc")))
        cert, key = _cert(tmp_path, "frank@recipient.test")
        served.cli("keys", "import", "Acme", str(cert))
        _policy(
            served,
            "rules:\n"
            "  - name: pgp partner\n"
            "    when: {recipient: [erin@recipient.test]}\n"
            "    action: encrypt\n"
            "    method: pgp\n"
            "  - name: smime partner\n"
            "    when: {recipient: [frank@recipient.test]}\n"
            "    action: encrypt\n"
            "    method: smime\n",
        )
        for rcpt in ("erin@recipient.test", "frank@recipient.test"):
            _send(served, _raw(rcpt, "Figures", rcpt.split("@")[0]), rcpt)

        pgp = sink_m.wait_for(lambda m: "erin@recipient.test" in m.rcpt_tos, timeout=60)[0]
        _assert_fits(pgp.data)
        outer = parse(pgp.data)
        assert outer.get_content_type() == "multipart/encrypted"
        armored = outer.get_payload()[1].get_payload(decode=True)
        inner = _gpg_decrypt(erin, armored)
        assert PLAIN in inner and HTML in inner  # the sealed entity is the original's

        smime = sink_m.wait_for(lambda m: "frank@recipient.test" in m.rcpt_tos, timeout=60)[0]
        _assert_fits(smime.data)
        assert parse(smime.data).get_content_type() == "application/pkcs7-mime"
        (tmp_path / "out.eml").write_bytes(smime.data)
        out = subprocess.run(
            ["openssl", "cms", "-decrypt", "-in", str(tmp_path / "out.eml"),
             "-recip", str(cert), "-inkey", str(key)],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        assert PLAIN in out.stdout and HTML in out.stdout
    finally:
        _kill_agent(erin)
