"""SIGTERM drains ``sealmail serve``: a new SMTP session gets 421, the transaction in
progress finishes with 250, outbox leases are given back at once (not left to expire),
and the process exits 0."""

from __future__ import annotations

import signal
import smtplib
import socket
import sqlite3
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Product
from tests.e2e.mail import make_message, send


@pytest.fixture
def hanging_relay() -> Iterator[int]:
    """A relay that takes connections (the kernel's backlog) and never says a word: a
    delivery to it stays in flight until ``relay_timeout``."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock.getsockname()[1]


def leases(db: Path) -> list[tuple[str, str | None]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        return conn.execute("SELECT state, lease_owner FROM outbox_recipients").fetchall()


def wait_until(check, timeout: float = 30.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.1)


def test_sigterm_drains_and_exits_0(tmp_path: Path, hanging_relay: int) -> None:
    product = Product(tmp_path / "sealmail", hanging_relay)
    product.init(relay_timeout="4s", delivery_concurrency="1", log_format="json")
    tenant = product.create_tenant("Acme", "acme.example")
    creds = tenant["smtp_username"], tenant["smtp_password"]
    db = product.root / "var" / "sealmail.db"
    product.start()
    try:
        for n in range(3):
            msg = make_message(f"n{n}", "hello\n", to=f"bob{n}@partner.example")
            assert send(product.smtp_port, msg, *creds).startswith("2.0.0 queued as")
        # the worker holds leases: one delivery in flight, the others waiting for it
        wait_until(lambda: sum(1 for _, owner in leases(db) if owner) >= 2)

        tls = ssl.create_default_context()
        tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
        open_tx = smtplib.SMTP("127.0.0.1", product.smtp_port, timeout=60)
        open_tx.starttls(context=tls)
        open_tx.login(*creds)
        assert open_tx.mail("alice@acme.example")[0] == 250
        assert open_tx.rcpt("carol@partner.example")[0] == 250
        open_tx.putcmd("data")
        assert open_tx.getreply()[0] == 354
        body = make_message("in flight", "hello\n" * 2000, to="carol@partner.example").as_bytes()
        open_tx.send(body[: len(body) // 2])

        assert product.proc is not None
        product.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        with smtplib.SMTP(timeout=10) as late:  # a new session while draining: 421
            code, _ = late.connect("127.0.0.1", product.smtp_port)
            assert code == 421

        open_tx.send(body[len(body) // 2 :] + b"\r\n.\r\n")
        code, text = open_tx.getreply()
        assert code == 250 and text.startswith(b"2.0.0 queued as"), (code, text)
        open_tx.close()

        code = product.proc.wait(timeout=60)
        product.proc = None
        assert code == 0, product.logs()[-3000:]
    finally:
        product.stop()
    # every lease was given back (the in-flight one after its attempt), none left to expire
    rows = leases(db)
    assert len(rows) == 3 and all(owner is None for _, owner in rows), rows
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 4
