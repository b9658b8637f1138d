"""Operators' surfaces through ``sealmail serve``: ``/metrics`` is not public (a listener of
its own, or a bearer token), and envelope paths that ask us to route mail onwards (source
routes, the %-hack, bang paths) are refused while the session goes on."""

from __future__ import annotations

import smtplib
import sqlite3
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.conftest import Product, _wait_port
from tests.e2e.mail import make_message
from tests.helpers.smtp_sink import SmtpSink, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]
TOKEN = "m3tr1cs-" + "x" * 40


def get(url: str, token: str | None = None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def test_metrics_are_not_public(tmp_path: Path, sink: SmtpSink) -> None:
    product = Product(tmp_path / "sealmail", sink.port)
    product.init()
    template = product.config.read_text()
    assert "metrics_token" in template and "metrics_listen" in template

    # no token: the portal answers 404; the listener of its own (role all) serves them
    listen = f"127.0.0.1:{free_port()}"
    port = int(listen.rsplit(":", 1)[1])
    product.init(metrics_listen=listen)
    product.start()
    _wait_port(port)  # it opens after the portal
    status, _ = get(f"{product.portal_url}/metrics")
    assert status == 404
    status, body = get(f"http://{listen}/metrics")
    assert status == 200 and "sealmail_queue_depth" in body
    # a forwarded header does not make a request trusted
    req = urllib.request.Request(
        f"{product.portal_url}/metrics", headers={"X-Forwarded-For": "127.0.0.1"}
    )
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=30)
    assert e.value.code == 404
    product.stop()

    # a token: bearer on the portal and on the listener, nothing without it
    product.init(metrics_listen=listen, metrics_token=TOKEN)
    product.start()
    _wait_port(port)
    for url in (f"{product.portal_url}/metrics", f"http://{listen}/metrics"):
        assert get(url)[0] == 401, url
        assert get(url, TOKEN[:-1] + "y")[0] == 401, url
        assert get(url, TOKEN + "x")[0] == 401, url
        status, body = get(url, TOKEN)
        assert status == 200 and "sealmail_smtp_replies_total" in body, url
    product.stop()
    assert TOKEN not in product.logs()


def test_a_short_metrics_token_stops_serve_with_one_line(tmp_path: Path, sink: SmtpSink) -> None:
    product = Product(tmp_path / "sealmail", sink.port)
    product.init(metrics_token="short-secret")
    proc = product.cli("serve", check=False)
    assert proc.returncode != 0
    assert "metrics_token" in proc.stderr and "short-secret" not in proc.stderr


ROUTED_SENDERS = [
    "<@hop.example:alice@acme.example>",
    "<@a.example,@b.example:alice@acme.example>",
    "<alice%evil.example@acme.example>",
    "<evil.example!alice@acme.example>",
    '<"alice%evil.example"@acme.example>',
]
ROUTED_RECIPIENTS = [
    "<@hop.example:victim@third.example>",
    "<@a.example,@b.example:victim@third.example>",
    "<victim%third.example@partner.example>",
    "<third.example!victim@partner.example>",
    '<"victim%third.example"@partner.example>',
]


def test_routed_envelope_paths_are_refused(tmp_path: Path, sink: SmtpSink) -> None:
    product = Product(tmp_path / "sealmail", sink.port)
    product.init()
    tenant = product.create_tenant("Acme", "acme.example")
    product.start()
    tls = ssl.create_default_context()
    tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", product.smtp_port, timeout=60) as smtp:
        smtp.starttls(context=tls)
        smtp.login(tenant["smtp_username"], tenant["smtp_password"])
        for path in ROUTED_SENDERS:
            code, text = smtp.docmd("MAIL", f"FROM:{path}")
            assert (code, text[:5]) == (553, b"5.1.7"), (path, code, text)
        assert smtp.docmd("MAIL", "FROM:<alice@acme.example>")[0] == 250
        for path in ROUTED_RECIPIENTS:
            code, text = smtp.docmd("RCPT", f"TO:{path}")
            assert (code, text[:5]) == (553, b"5.1.3"), (path, code, text)
        assert smtp.docmd("RCPT", "TO:<bob@partner.example>")[0] == 250
        msg = make_message("hello", "plain hello\n", to="bob@partner.example")
        code, text = smtp.data(msg.as_bytes())
        assert code == 250 and text.startswith(b"2.0.0 queued as"), (code, text)

    delivered = sink.wait_for(lambda m: "bob@partner.example" in m.rcpt_tos)
    assert [m.rcpt_tos for m in delivered] == [["bob@partner.example"]]
    product.stop()
    db = product.root / "var" / "sealmail.db"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 1
        rcpts = conn.execute("SELECT rcpt FROM message_recipients").fetchall()
        queued = conn.execute("SELECT rcpt FROM outbox_recipients").fetchall()
    assert rcpts == [("bob@partner.example",)]
    assert queued == [("bob@partner.example",)]
    assert all(r == "bob@partner.example" for m in sink.messages for r in m.rcpt_tos)
