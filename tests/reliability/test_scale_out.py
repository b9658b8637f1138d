"""The scale-out test of issue 4: one PostgreSQL and one S3 archive (moto's server on
loopback, a private instance), two ``serve --role smtp`` processes (each its own
``SEALMAIL_SMTP_LISTEN``, the same configuration otherwise) and two ``--role worker``
processes, as they would run on several machines. MESSAGES messages, each to two
recipients, split across both listeners, are each delivered exactly once per recipient."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e.conftest import Product
from tests.helpers.moto_server import MotoServer
from tests.helpers.private_pg import PrivatePostgres
from tests.helpers.smtp_sink import SmtpSink, free_port
from tests.helpers.stores import new_bucket
from tests.reliability.conftest import RoleProcess
from tests.reliability.load import Job, Senders, sizes, wait_delivered

MESSAGES = 2000
SESSIONS = 20


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.reliability
@pytest.mark.timeout(900)
def test_two_listeners_two_workers_deliver_each_recipient_once(
    tmp_path: Path, sink: SmtpSink, private_pg: PrivatePostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in MotoServer.ENV.items():
        monkeypatch.setenv(k, v)
    s3 = MotoServer().start()
    product = Product(tmp_path / "sealmail", sink.port)
    product.init(
        database_url=private_pg.url,
        smtp_auth_require_tls="false",
        archive_url=f"s3://{new_bucket(s3.endpoint)}/sealmail",
        s3_endpoint_url=s3.endpoint,
    )
    product.cli("migrate")
    product.cli(
        "tenant", "create", "Acme", "--domain", "acme.example", "--private-network", "127.0.0.0/8"
    )
    ports = [free_port(), free_port()]
    procs = [
        RoleProcess(
            product.config,
            "smtp",
            tmp_path / f"smtp{n}.log",
            {"SEALMAIL_SMTP_LISTEN": f"127.0.0.1:{port}"},
        )
        for n, port in enumerate(ports)
    ]
    procs += [
        RoleProcess(product.config, "worker", tmp_path / f"worker{n}.log", {}) for n in range(2)
    ]
    try:
        for p, port in zip(procs, [*ports, None, None], strict=True):
            p.wait_ready(port)
        jobs = [
            Job(
                f"scale-{i}",
                size,
                [f"a{i}@recipient.test", f"b{i}@other.test"],
                ports[i % 2],
            )
            for i, size in enumerate(sizes(MESSAGES, 10_000, 50_000, seed=6))
        ]
        t0 = time.monotonic()
        senders = Senders(jobs, SESSIONS, deadline=t0 + 420).start()
        senders.join()
        sent_at = time.monotonic() - t0
        result = wait_delivered(sink, senders, timeout=180)
        done_at = time.monotonic() - t0
        for p in procs:
            assert p.proc.poll() is None, f"{p.role} died: {p.logs()[-2000:]}"
    finally:
        codes = [p.stop() for p in procs]
        s3.stop()
    per_worker = [p.logs().count("250 2.0.0 stored") for p in procs[2:]]
    copies = sum(len(v) for v in result.copies.values())
    print(
        f"\nscale-out: {MESSAGES} messages x 2 recipients over {SESSIONS} sessions to 2 "
        f"listeners; accepted {len(senders.accepted)} by {sent_at:.0f} s; {copies} "
        f"recipient copies delivered by {done_at:.0f} s (workers' 250 lines {per_worker}); "
        f"lost {len(result.lost)}; duplicates {result.delivery_duplicates} + "
        f"{result.resend_duplicates} resent + {result.unexplained} unexplained; replies "
        f"{dict(senders.replies)}"
    )
    assert not senders.permanent, senders.permanent[:5]
    assert len(senders.accepted) == MESSAGES, "senders ran out of time"
    assert not result.lost, result.lost[:10]
    assert result.delivery_duplicates == result.resend_duplicates == result.unexplained == 0
    assert copies == 2 * MESSAGES
    assert codes == [0, 0, 0, 0], codes
