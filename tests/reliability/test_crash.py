"""The crash test of issue 4: mail flows in over many sessions while the whole product is
killed with SIGKILL at random moments and restarted; once it settles, every message that
got a ``250`` is at the sink, no sender ever saw a 5xx, and duplicates stay within
kills x ``delivery_concurrency``.

As the issue asks: MESSAGES messages of 10 KB-2 MB (log-uniform: many small, some big)
over SESSIONS concurrent sessions, KILLS kills (about four minutes on a 2-core machine).
PostgreSQL is a private instance; only sealmail is killed.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import Product
from tests.helpers.private_pg import PrivatePostgres
from tests.helpers.smtp_sink import SmtpSink
from tests.reliability.load import Job, Senders, sizes, wait_delivered

MESSAGES = 2000
SESSIONS = 20
KILLS = 10
CONCURRENCY = 10  # delivery_concurrency
SEED = 4


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.reliability
@pytest.mark.timeout(1500)
def test_sigkill_ten_times_under_load_loses_nothing(
    tmp_path: Path, sink: SmtpSink, private_pg: PrivatePostgres
) -> None:
    product = Product(tmp_path / "sealmail", sink.port)
    product.init(
        database_url=private_pg.url,
        delivery_concurrency=str(CONCURRENCY),
        smtp_auth_require_tls="false",
    )
    product.cli("migrate")
    product.cli(
        "tenant", "create", "Acme", "--domain", "acme.example", "--private-network", "127.0.0.0/8"
    )
    product.start()
    t0 = time.monotonic()
    rnd = random.Random(SEED)
    jobs = [
        Job(f"crash-{i}", size, [f"r{i}@recipient.test"], product.smtp_port)
        for i, size in enumerate(sizes(MESSAGES, 10_000, 2_000_000, SEED))
    ]
    senders = Senders(jobs, SESSIONS, deadline=time.monotonic() + 480).start()
    kills: list[float] = []
    try:
        for _ in range(KILLS):
            time.sleep(rnd.uniform(4.0, 18.0))  # spread over the run
            product.kill()
            kills.append(time.monotonic() - t0)
            product.start()
        senders.join()
        sent_at = time.monotonic() - t0
        result = wait_delivered(sink, senders, timeout=180)
    finally:
        product.stop()
    done_at = time.monotonic() - t0
    dup_bound = KILLS * CONCURRENCY
    print(
        f"\ncrash: {MESSAGES} messages, {sum(j.size for j in jobs) / 1e6:.0f} MB, "
        f"{SESSIONS} sessions, {len(kills)} kills at {[round(k, 1) for k in kills]} s; "
        f"accepted {len(senders.accepted)} by {sent_at:.0f} s, delivered by {done_at:.0f} s; "
        f"lost {len(result.lost)}; duplicates: delivery {result.delivery_duplicates}, "
        f"resent after a lost reply {result.resend_duplicates}, unexplained "
        f"{result.unexplained} (bound {dup_bound}); ambiguous sends "
        f"{len(senders.ambiguous)}; replies {dict(senders.replies)}; "
        f"refused connects {senders.refused_connects}"
    )
    assert len(senders.accepted) == MESSAGES, "senders ran out of time"
    assert not senders.permanent, senders.permanent[:5]
    assert not result.lost, result.lost[:10]
    assert result.unexplained == 0
    assert result.delivery_duplicates + result.resend_duplicates <= dup_bound
