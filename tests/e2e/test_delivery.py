"""Nothing accepted is lost: kill -9 after 250, relay retries, bounces, suspension."""

from __future__ import annotations

import smtplib
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import Product
from tests.e2e.mail import find_link, make_message, parse, send
from tests.helpers.smtp_sink import SmtpSink


@pytest.mark.e2e
def test_kill9_right_after_250_loses_nothing(tmp_path: Path) -> None:
    sink = SmtpSink()  # not listening yet: the relay is down while the server dies
    product = Product(tmp_path / "sealmail", sink.port)
    product.init()
    tenant = product.create_tenant("Acme", "acme.example")
    product.start()
    try:
        clear = make_message("Lunch on Friday?", "See you at noon.", to="carol@recipient.test")
        secure = make_message("[secure] Contract", "Signed copy attached.")
        send(product.smtp_port, clear, tenant["smtp_username"], tenant["smtp_password"])
        send(product.smtp_port, secure, tenant["smtp_username"], tenant["smtp_password"])
        product.kill()
        sink.start()
        product.start()
        got = sink.wait_for(lambda m: "carol@recipient.test" in m.rcpt_tos, timeout=60)[0]
        assert b"See you at noon." in got.data
        assert str(parse(got.data)["Subject"]) == "Lunch on Friday?"
        note = sink.wait_for(lambda m: "bob@recipient.test" in m.rcpt_tos, timeout=60)[0]
        assert find_link(note.data, product.portal_url)
    finally:
        product.stop()
        sink.stop()


@pytest.mark.e2e
def test_relay_451_then_250_is_delivered_after_retry(product: Product, sink: SmtpSink) -> None:
    tenant = product.create_tenant("Acme", "acme.example")
    sink.answer("451 4.3.0 try again later", times=1)
    product.start()
    t0 = time.time()
    send(
        product.smtp_port,
        make_message("Hello", "plain text", to="dave@recipient.test"),
        tenant["smtp_username"],
        tenant["smtp_password"],
    )
    got = sink.wait_for(lambda m: "dave@recipient.test" in m.rcpt_tos, timeout=60)
    assert len(got) == 1
    assert got[0].at - t0 >= 0.9  # it waited for the backoff before the second try
    assert not [m for m in sink.messages if m.mail_from in ("", "<>")]  # no bounce


@pytest.mark.e2e
def test_relay_550_gives_exactly_one_dsn(product: Product, sink: SmtpSink) -> None:
    tenant = product.create_tenant("Acme", "acme.example")
    sink.answer("550 5.1.1 no such user", times=1)
    product.start()
    send(
        product.smtp_port,
        make_message("Hello", "plain text", to="erin@recipient.test"),
        tenant["smtp_username"],
        tenant["smtp_password"],
    )
    dsn = sink.wait_for(lambda m: m.mail_from in ("", "<>"), timeout=60)[0]
    assert dsn.rcpt_tos == ["alice@acme.example"]
    report = parse(dsn.data)
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    assert b"erin@recipient.test" in dsn.data and b"5.1.1" in dsn.data
    time.sleep(3)
    assert len([m for m in sink.messages if m.mail_from in ("", "<>")]) == 1
    assert not [m for m in sink.messages if "erin@recipient.test" in m.rcpt_tos]


@pytest.mark.e2e
def test_suspended_tenant_gets_451_and_resumes(product: Product, sink: SmtpSink) -> None:
    tenant = product.create_tenant("Acme", "acme.example")
    product.start()
    product.cli("tenant", "suspend", "Acme")
    with pytest.raises(smtplib.SMTPException) as err:
        send(
            product.smtp_port,
            make_message("Hello", "x", to="frank@recipient.test"),
            tenant["smtp_username"],
            tenant["smtp_password"],
        )
    assert "451" in str(err.value) and "4.7.1" in str(err.value)
    product.cli("tenant", "resume", "Acme")
    send(
        product.smtp_port,
        make_message("Hello", "x", to="frank@recipient.test"),
        tenant["smtp_username"],
        tenant["smtp_password"],
    )
    assert sink.wait_for(lambda m: "frank@recipient.test" in m.rcpt_tos, timeout=60)
