"""The database outage of issue 4: PostgreSQL (a private instance) stops for OUTAGE seconds
while senders keep sending. They get ``451`` (never a 5xx) and retry; once it is back,
everything that got a ``250`` — before, during or after — is delivered, none lost."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e.conftest import Product
from tests.helpers.private_pg import PrivatePostgres
from tests.helpers.smtp_sink import SmtpSink
from tests.reliability.load import Job, Senders, sizes, wait_delivered

MESSAGES = 400
SESSIONS = 10
OUTAGE = 30.0


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.reliability
@pytest.mark.timeout(300)
def test_database_stopped_under_load_gives_451_and_loses_nothing(
    tmp_path: Path, sink: SmtpSink, private_pg: PrivatePostgres
) -> None:
    product = Product(tmp_path / "sealmail", sink.port)
    product.init(database_url=private_pg.url, smtp_auth_require_tls="false")
    product.cli("migrate")
    product.cli(
        "tenant", "create", "Acme", "--domain", "acme.example", "--private-network", "127.0.0.0/8"
    )
    product.start()
    jobs = [
        Job(f"outage-{i}", size, [f"r{i}@recipient.test"], product.smtp_port)
        for i, size in enumerate(sizes(MESSAGES, 10_000, 100_000, seed=5))
    ]
    t0 = time.monotonic()
    # Paced (about 20 messages a second at most) so that mail keeps coming in throughout.
    senders = Senders(jobs, SESSIONS, deadline=t0 + 200, pause=0.5).start()
    try:
        time.sleep(5)
        accepted_before = len(senders.accepted)
        private_pg.stop("immediate")
        down_at = time.monotonic()
        time.sleep(OUTAGE)
        accepted_during = len(senders.accepted) - accepted_before
        tempfails_during = sum(n for code, n in senders.replies.items() if 400 <= code < 500)
        private_pg.start()
        up_at = time.monotonic()
        senders.join()
        sent_at = time.monotonic() - t0
        result = wait_delivered(sink, senders, timeout=120)
        done_at = time.monotonic() - t0
        assert product.proc is not None and product.proc.poll() is None, "sealmail died"
        # what the queue says about anything not delivered, so a loss names its state
        queue = product.cli("queue", "list", check=False).stdout if result.lost else ""
    finally:
        product.stop()
    print(
        f"\ndb outage: {MESSAGES} messages over {SESSIONS} sessions; database down "
        f"{up_at - down_at:.0f} s from {down_at - t0:.0f} s; accepted {accepted_before} before, "
        f"{accepted_during} while down, {len(senders.accepted)} in all by {sent_at:.0f} s; "
        f"delivered by {done_at:.0f} s; lost {len(result.lost)}; replies "
        f"{dict(senders.replies)}; duplicates {result.delivery_duplicates} + "
        f"{result.resend_duplicates} resent + {result.unexplained} unexplained"
    )
    assert accepted_before > 0
    assert tempfails_during > 0, "nobody was told to try again while the database was down"
    assert not senders.permanent, senders.permanent[:5]
    assert len(senders.accepted) == MESSAGES, "senders ran out of time"
    assert not result.lost, (result.lost[:10], queue, product.logs()[-4000:])
    assert result.unexplained == 0  # a 451 never hid a message that was kept
    # a copy the next hop took while the database went away is written when it returns,
    # never sent again
    assert result.delivery_duplicates == 0
