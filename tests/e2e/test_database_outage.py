"""PostgreSQL stops in the middle of a transaction: the client gets 451 (never 5xx), and
once the database is back the same message is accepted and delivered."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Product
from tests.e2e.mail import make_message
from tests.helpers.private_pg import PrivatePostgres, private_postgres
from tests.helpers.smtp_sink import SmtpSink


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    with private_postgres() as pg:
        yield pg


def _session(port: int, user: str, password: str) -> smtplib.SMTP:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    smtp = smtplib.SMTP("127.0.0.1", port, timeout=60)
    smtp.starttls(context=ctx)
    smtp.login(user, password)
    return smtp


@pytest.mark.e2e
@pytest.mark.postgres
def test_database_down_during_data_gives_451_then_recovers(
    tmp_path: Path, sink: SmtpSink, private_pg: PrivatePostgres
) -> None:
    product = Product(tmp_path / "sealmail", sink.port)
    product.init(database_url=private_pg.url)
    product.cli("migrate")
    tenant = product.create_tenant("Acme", "acme.example")
    product.start()
    try:
        msg = make_message("Figures", "Numbers inside.", to="gina@recipient.test")
        smtp = _session(product.smtp_port, tenant["smtp_username"], tenant["smtp_password"])
        assert smtp.mail("alice@acme.example")[0] == 250
        assert smtp.rcpt("gina@recipient.test")[0] == 250
        private_pg.stop("immediate")
        try:
            code, text = smtp.data(msg.as_bytes())
        except smtplib.SMTPDataError as exc:  # refused at DATA itself
            code, text = exc.smtp_code, exc.smtp_error
        assert code == 451, (code, text)
        assert text.startswith(b"4.3.0"), text
        assert b"Error" not in text and b"Exception" not in text  # no internals leak
        smtp.close()

        private_pg.start()
        smtp = _session(product.smtp_port, tenant["smtp_username"], tenant["smtp_password"])
        smtp.sendmail("alice@acme.example", ["gina@recipient.test"], msg.as_bytes())
        smtp.quit()
        got = sink.wait_for(lambda m: "gina@recipient.test" in m.rcpt_tos, timeout=60)
        assert b"Numbers inside." in got[0].data
    finally:
        product.stop()
