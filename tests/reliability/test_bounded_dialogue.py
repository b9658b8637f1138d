"""No silent SMTP dialogue (issue 11, item 4): a command that waits on the database longer
than ``smtp_step_timeout`` answers with a 4xx within the bound and logs what it waited on;
once the database answers again, everything works and the mail is delivered."""

from __future__ import annotations

import base64
import smtplib
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import Product
from tests.e2e.mail import make_message
from tests.helpers.private_pg import PrivatePostgres
from tests.helpers.smtp_sink import SmtpSink

BOUND = 2.0  # smtp_step_timeout in this test
LOCKED = "tenants, smtp_credentials, tenant_domains, allowed_networks, tenant_keys"


def _lock(url: str) -> subprocess.Popen[str]:
    """A psql session holding ACCESS EXCLUSIVE locks on the identity tables until it is
    told to commit: every read of them waits."""
    holder = subprocess.Popen(
        ["psql", "-qtA", "-v", "ON_ERROR_STOP=1", url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdin is not None and holder.stdout is not None
    holder.stdin.write(f"BEGIN; LOCK TABLE {LOCKED} IN ACCESS EXCLUSIVE MODE; SELECT 'locked';\n")
    holder.stdin.flush()
    assert "locked" in holder.stdout.readline()
    return holder


def _timed(call: object, *args: object) -> tuple[int, bytes, float]:
    start = time.monotonic()
    code, text = call(*args)  # type: ignore[operator]
    return code, text, time.monotonic() - start


@pytest.mark.reliability
@pytest.mark.timeout(90)
def test_commands_waiting_on_a_locked_database_answer_4xx_within_the_bound(
    tmp_path: Path, sink: SmtpSink, private_pg: PrivatePostgres
) -> None:
    product = Product(tmp_path / "sealmail", sink.port)
    product.init(database_url=private_pg.url, smtp_auth_require_tls="false", smtp_step_timeout="2s")
    product.cli("migrate")
    tenant = product.create_tenant("Acme", "acme.example")
    # Globex's Microsoft 365 connector sends from loopback: its sessions have no tenant
    # until RCPT (a journal address) or the token in DATA
    product.cli(
        "tenant", "create", "Globex", "--domain", "globex.example", "--network", "127.0.0.0/8"
    )
    product.start()
    user, password = tenant["smtp_username"], tenant["smtp_password"]
    plain = base64.b64encode(f"\0{user}\0{password}".encode()).decode()

    authed = smtplib.SMTP("127.0.0.1", product.smtp_port, timeout=BOUND + 8)
    authed.ehlo()
    authed.login(user, password)
    fresh = smtplib.SMTP("127.0.0.1", product.smtp_port, timeout=BOUND + 8)
    fresh.ehlo()
    # a transaction that reaches DATA while the database hangs
    data_first = smtplib.SMTP("127.0.0.1", product.smtp_port, timeout=BOUND + 8)
    data_first.ehlo()
    data_first.login(user, password)
    assert data_first.mail("alice@acme.example")[0] == 250
    assert data_first.rcpt("bob@recipient.test")[0] == 250

    connector = smtplib.SMTP("127.0.0.1", product.smtp_port, timeout=BOUND + 8)
    connector.ehlo()
    assert connector.mail("bob@globex.example")[0] == 250

    holder = _lock(private_pg.url)
    try:
        code, text, took = _timed(fresh.docmd, "AUTH", "PLAIN " + plain)
        assert (code, text[:5]) == (451, b"4.3.0"), (code, text)
        assert BOUND - 0.5 < took < BOUND + 3, took
        code, text, took = _timed(authed.mail, "alice@acme.example")
        assert (code, text[:5]) == (451, b"4.3.0"), (code, text)
        assert BOUND - 0.5 < took < BOUND + 3, took
        code, text, took = _timed(connector.rcpt, "someone@globex.example")
        assert (code, text[:5]) == (451, b"4.3.0"), (code, text)
        assert BOUND - 0.5 < took < BOUND + 3, took
        body = make_message("refused while locked", "body").as_bytes()
        code, text, took = _timed(data_first.data, body)
        assert (code, text[:5]) == (451, b"4.3.0"), (code, text)
        assert BOUND - 0.5 < took < BOUND + 3, took
    finally:
        assert holder.stdin is not None
        holder.stdin.write("COMMIT;\n")
        holder.stdin.close()
        holder.wait(timeout=10)

    # the database answers again: the same sessions carry on and nothing is lost
    code, text = fresh.docmd("AUTH", "PLAIN " + plain)
    assert code == 235, (code, text)
    assert connector.rcpt("someone@globex.example")[0] == 250
    connector.quit()
    sessions = ((authed, "after the lock 1"), (fresh, "after the lock 2"))
    for smtp, subject in (*sessions, (data_first, "after the lock 3")):
        assert smtp.mail("alice@acme.example")[0] == 250
        assert smtp.rcpt("bob@recipient.test")[0] == 250
        code, text = smtp.data(make_message(subject, "body").as_bytes())
        assert code == 250, (code, text)
        smtp.quit()
    got = sink.wait_for(lambda m: "bob@recipient.test" in m.rcpt_tos, count=3)
    assert sorted(m.data.count(b"after the lock") for m in got) == [1, 1, 1]
    assert not any(b"refused while locked" in m.data for m in sink.messages)
    logs = product.logs()
    assert "AUTH waited 2 s for the database" in logs
    assert "MAIL waited 2 s for the database" in logs
    assert "RCPT waited 2 s for the database" in logs
    assert "DATA waited 2 s for the database and the tenant key" in logs
