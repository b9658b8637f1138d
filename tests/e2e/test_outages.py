"""Outages the gateway must ride out without losing or bouncing mail (issue 4).

- The relay goes away while mail keeps coming: first nothing listens (connection refused),
  then it answers 421/451, then it works again. Every accepted message arrives, none
  bounces. The outage lasts the issue's 60 s (20 s refused, 40 s 4xx) with backoffs of
  0.5-1 s, so each message meets it over many retry rounds; the 500 messages are spread
  over the outage.
- A delay longer than ``queue_delay_warning`` sends the sender one "delayed" DSN per
  recipient, never more, and the mail is still delivered afterwards; an operator's
  ``queue hold`` stops attempts and ``queue release`` resumes them.
- The archive cannot be written: the client gets ``451 4.3.0`` (never a 5xx); after the
  repair the same message is accepted and delivered.

Everything on loopback; each wait is bounded.
"""

from __future__ import annotations

import json
import smtplib
import ssl
import threading
import time
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from tests.e2e.conftest import Product
from tests.e2e.mail import make_message, parse
from tests.helpers.smtp_sink import SmtpSink, _Handler


def _session(port: int, tenant: dict[str, str]) -> smtplib.SMTP:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    smtp = smtplib.SMTP("127.0.0.1", port, timeout=60)
    smtp.starttls(context=ctx)
    smtp.login(tenant["smtp_username"], tenant["smtp_password"])
    return smtp


def _bounces(sink: SmtpSink) -> list[bytes]:
    return [m.data for m in sink.messages if m.mail_from in ("", "<>")]


class _PickyHandler(_Handler):
    """Answers ``sink.refuse[rcpt]`` to the recipients named there; counts every RCPT."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: ANN001
        sink = self.sink
        with sink._lock:
            sink.rcpt_counts[address] = sink.rcpt_counts.get(address, 0) + 1  # type: ignore[attr-defined]
            reply = sink.refuse.get(address)  # type: ignore[attr-defined]
        if reply:
            return reply
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)


def _picky_sink() -> SmtpSink:
    sink = SmtpSink()
    sink.refuse = {}  # type: ignore[attr-defined]
    sink.rcpt_counts = {}  # type: ignore[attr-defined]
    sink.controller = Controller(
        _PickyHandler(sink), hostname="127.0.0.1", port=sink.port, ready_timeout=10
    )
    return sink


def _phase(replies: list[tuple[int, bytes]], seconds: float, at_least: int) -> None:
    """Last ``seconds``, and until ``at_least`` messages were accepted (a slow machine
    still sends mail into each phase); never longer than 90 s."""
    start = time.monotonic()
    while time.monotonic() - start < 90:
        if time.monotonic() - start >= seconds and len(replies) >= at_least:
            return
        time.sleep(0.05)


@pytest.mark.e2e
@pytest.mark.timeout(400)
def test_relay_outage_during_500_messages_delivers_all_without_bounces(tmp_path: Path) -> None:
    total, sessions = 500, 10
    sink = SmtpSink()  # not listening yet: connection refused
    product = Product(tmp_path / "sealmail", sink.port)
    product.init(queue_min_backoff="0.5s", queue_max_backoff="1s", relay_timeout="5s")
    tenant = product.create_tenant("Acme", "acme.example")
    product.start()
    replies: list[tuple[int, bytes]] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        smtp = _session(product.smtp_port, tenant)
        try:
            for i in range(n, total, sessions):
                msg = make_message(f"Outage {i}", f"body {i}", to=f"r{i}@recipient.test")
                smtp.mail("alice@acme.example")
                smtp.rcpt(f"r{i}@recipient.test")
                code, text = smtp.data(msg.as_bytes())
                with lock:
                    replies.append((code, text))
                time.sleep(1.0)  # spread the 500 messages over the 60 s outage
        finally:
            smtp.quit()

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(sessions)]
    t0 = time.monotonic()
    try:
        for t in threads:
            t.start()
        _phase(replies, seconds=20, at_least=100)  # relay refused connections
        refused_phase = len(replies)
        sink.always = "451 4.3.0 relay busy, try later"
        sink.answer("421 4.3.2 service shutting down", times=20)
        sink.start()
        _phase(replies, seconds=40, at_least=300)  # relay answers 4xx
        with sink._lock:
            assert sink.messages == []  # nothing got through the outage
        sink.always = None
        during_outage = len(replies)
        for t in threads:
            t.join(timeout=90)
        assert not any(t.is_alive() for t in threads), "a client session hung"
        assert refused_phase > 0, "no mail was accepted while the relay was down"
        assert during_outage >= total // 2, during_outage  # most of it came during the outage
        logs = product.logs()
        for seen in ("Errno 111", "451 4.3.0 relay busy"):  # refused, then 4xx
            assert seen in logs, f"the worker never met {seen!r}: the outage did not happen"
        assert len(replies) == total
        assert all(code == 250 for code, _ in replies), {c for c, _ in replies}
        got = sink.wait_for(lambda m: m.mail_from not in ("", "<>"), timeout=60, count=total)
        delivered = sorted(r for m in got for r in m.rcpt_tos)
        assert delivered == sorted(f"r{i}@recipient.test" for i in range(total))  # once each
        time.sleep(1)
        assert _bounces(sink) == []
        assert time.monotonic() - t0 < 240
        bounced = json.loads(product.cli("queue", "list", "--state", "bounced", "--json").stdout)
        assert bounced == []
        waiting = json.loads(product.cli("queue", "list", "--json").stdout)
        assert waiting == []
    finally:
        product.stop()
        sink.stop()


@pytest.mark.e2e
def test_delay_warning_goes_once_and_hold_release_work(tmp_path: Path) -> None:
    sink = _picky_sink()
    sink.refuse["bob@recipient.test"] = "451 4.2.2 mailbox busy"  # type: ignore[attr-defined]
    sink.start()
    product = Product(tmp_path / "sealmail", sink.port)
    product.init(queue_min_backoff="0.3s", queue_max_backoff="0.5s", queue_delay_warning="2s")
    tenant = product.create_tenant("Acme", "acme.example")
    product.start()
    try:
        smtp = _session(product.smtp_port, tenant)
        msg = make_message("Quarterly numbers", "The secret figures.", to="bob@recipient.test")
        smtp.sendmail("alice@acme.example", ["bob@recipient.test"], msg.as_bytes())
        smtp.quit()
        [dsn] = sink.wait_for(lambda m: m.mail_from in ("", "<>"), timeout=30)
        assert dsn.mail_from == "<>", dsn.mail_from  # the null sender, as aiosmtpd records it
        assert dsn.rcpt_tos == ["alice@acme.example"]
        report = parse(dsn.data)
        assert report.get_content_type() == "multipart/report"
        assert "Delayed" in str(report["Subject"])
        status = dsn.data.decode("utf-8", "replace")
        assert (
            "Action: delayed" in status and "Final-Recipient: rfc822; bob@recipient.test" in status
        )
        assert "Will-Retry-Until:" in status and "Status: 4.2.2" in status
        assert "Action: failed" not in status
        assert "The secret figures." not in status  # headers only, never the body
        assert "Subject: Quarterly numbers" in status

        tries = sink.rcpt_counts["bob@recipient.test"]  # type: ignore[attr-defined]
        time.sleep(3)  # several more retries (backoff <= 0.5 s): still one warning
        assert sink.rcpt_counts["bob@recipient.test"] > tries + 2  # type: ignore[attr-defined]
        assert len(_bounces(sink)) == 1

        [row] = json.loads(product.cli("queue", "list", "--json").stdout)
        assert row["recipient"] == "bob@recipient.test" and row["state"] == "deferred"
        shown = json.loads(product.cli("queue", "show", row["queue_id"], "--json").stdout)
        assert shown["recipients"][0]["warned_at"]
        assert "451 4.2.2" in shown["recipients"][0]["last_reply"]

        # hold: the worker stops trying (a recipient leased right now stays with its worker,
        # so ask until it is caught between two tries)
        deadline = time.monotonic() + 10
        while True:
            held = json.loads(product.cli("queue", "hold", row["queue_id"], "--json").stdout)
            if held["recipients"] == 1 or time.monotonic() > deadline:
                break
        assert held["recipients"] == 1
        time.sleep(0.5)
        tries = sink.rcpt_counts["bob@recipient.test"]  # type: ignore[attr-defined]
        time.sleep(2)
        assert sink.rcpt_counts["bob@recipient.test"] == tries  # type: ignore[attr-defined]

        del sink.refuse["bob@recipient.test"]  # type: ignore[attr-defined]
        product.cli("queue", "release", row["queue_id"])
        [got] = sink.wait_for(lambda m: "bob@recipient.test" in m.rcpt_tos, timeout=30)
        assert b"The secret figures." in got.data
        time.sleep(1)
        assert len(_bounces(sink)) == 1  # the one warning, no failure DSN
    finally:
        product.stop()
        sink.stop()


@pytest.mark.e2e
def test_archive_unwritable_gives_451_then_recovers(product: Product, sink: SmtpSink) -> None:
    tenant = product.create_tenant("Acme", "acme.example")
    product.start()
    archive = product.root / "var" / "archive"
    assert archive.is_dir()
    away = archive.with_name("archive.away")
    # chmod does not stop root: put a plain file where the directory was, so every write
    # below it fails (ENOTDIR) whoever we run as
    archive.rename(away)
    archive.write_bytes(b"not a directory\n")
    msg = make_message("Report", "Numbers inside.", to="gina@recipient.test")
    try:
        smtp = _session(product.smtp_port, tenant)
        assert smtp.mail("alice@acme.example")[0] == 250
        assert smtp.rcpt("gina@recipient.test")[0] == 250
        try:
            code, text = smtp.data(msg.as_bytes())
        except smtplib.SMTPDataError as exc:
            code, text = exc.smtp_code, exc.smtp_error
        assert code == 451, (code, text)
        assert text.startswith(b"4.3.0"), text
        assert b"Error" not in text and b"archive.away" not in text  # no internals leak
        smtp.quit()
    finally:
        if archive.is_file():
            archive.unlink()
        if away.exists():
            away.rename(archive)
    smtp = _session(product.smtp_port, tenant)
    smtp.sendmail("alice@acme.example", ["gina@recipient.test"], msg.as_bytes())
    smtp.quit()
    got = sink.wait_for(lambda m: "gina@recipient.test" in m.rcpt_tos, timeout=60)
    assert len(got) == 1 and b"Numbers inside." in got[0].data
    assert _bounces(sink) == []
