"""A worker on another host dies holding claims (issue 4: "a dead worker's lease expires").

Worker B runs in a UTS namespace of its own (another host name), takes the deliveries and
is killed with SIGKILL while the next hop holds its connections at DATA. Worker A, on this
host, cannot tell whether B's process lives, so it must not take B's claims over until they
run out (``queue_lease``); then it delivers everything, each recipient once.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import time
from pathlib import Path

import asyncpg
import pytest

from tests.e2e.conftest import Product
from tests.helpers.private_pg import PrivatePostgres
from tests.helpers.smtp_sink import SmtpSink, free_port
from tests.reliability.conftest import RoleProcess
from tests.reliability.load import Job, Senders, sizes

MESSAGES = 40
LEASE = 10.0


async def _claims(url: str, prefix: str) -> tuple[list[tuple[str, float]], int]:
    """B's live delivery leases (recipient, lease_until) and its claimed messages."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        leases = await conn.fetch(
            "SELECT rcpt, lease_until FROM outbox_recipients "
            "WHERE lease_owner LIKE $1 AND lease_until > $2",
            prefix + "%",
            time.time(),
        )
        claimed = await conn.fetchval(
            "SELECT count(*) FROM messages WHERE claimed_by LIKE $1 AND state = 'received'",
            prefix + "%",
        )
    finally:
        await conn.close()
    return [(r["rcpt"], r["lease_until"]) for r in leases], int(claimed)


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.reliability
@pytest.mark.timeout(240)
@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare")
def test_claims_of_a_dead_worker_on_another_host_run_out(
    tmp_path: Path, sink: SmtpSink, private_pg: PrivatePostgres
) -> None:
    product = Product(tmp_path / "sealmail", sink.port)
    product.init(
        database_url=private_pg.url,
        smtp_auth_require_tls="false",
        queue_lease=f"{LEASE:.0f}s",
        relay_timeout="5s",
    )
    product.cli("migrate")
    product.cli(
        "tenant", "create", "Acme", "--domain", "acme.example", "--private-network", "127.0.0.0/8"
    )
    port = free_port()
    env = {"SEALMAIL_SMTP_LISTEN": f"127.0.0.1:{port}"}
    smtp = RoleProcess(product.config, "smtp", tmp_path / "smtp.log", env)
    worker_b = RoleProcess(product.config, "worker", tmp_path / "b.log", {}, hostname="other-b")
    worker_a: RoleProcess | None = None
    sink.stall.set()  # the next hop holds every DATA: B's claims stay live
    try:
        smtp.wait_ready(port)
        worker_b.wait_ready()
        jobs = [
            Job(f"lease-{i}", size, [f"r{i}@recipient.test"], port)
            for i, size in enumerate(sizes(MESSAGES, 5_000, 20_000, seed=9))
        ]
        senders = Senders(jobs, 5, deadline=time.monotonic() + 60).start()
        senders.join()
        assert len(senders.accepted) == MESSAGES
        deadline = time.monotonic() + 60
        while sink.stalled < 5:  # B is in DATA with the next hop, holding its leases
            assert time.monotonic() < deadline, worker_b.logs()[-2000:]
            time.sleep(0.05)
        worker_b.proc.send_signal(signal.SIGKILL)
        worker_b.proc.wait(10)
        killed_at = time.time()
        leases, claimed = asyncio.run(_claims(private_pg.url, "other-b:"))
        assert leases, "B held no live lease when it died"
        sink.stall.clear()
        worker_a = RoleProcess(product.config, "worker", tmp_path / "a.log", {})
        worker_a.wait_ready()
        got = sink.wait_for(lambda m: True, timeout=4 * LEASE + 60, count=MESSAGES)
        time.sleep(1.0)
        with sink._lock:
            delivered = [r for m in sink.messages for r in m.rcpt_tos]
            first_at = {r: m.at for m in reversed(sink.messages) for r in m.rcpt_tos}
    finally:
        for p in (smtp, worker_b, worker_a):
            if p is not None:
                p.stop()
    print(
        f"\nother host: B died holding {len(leases)} delivery leases and {claimed} message "
        f"claims; A delivered {len(got)} messages, the last "
        f"{max(first_at.values()) - killed_at:.1f} s after the kill (lease {LEASE:.0f} s)"
    )
    assert sorted(delivered) == sorted(f"r{i}@recipient.test" for i in range(MESSAGES))
    for rcpt, lease_until in leases:  # never before B's claim ran out
        assert first_at[rcpt] >= lease_until - 0.5, (rcpt, first_at[rcpt] - lease_until)
    assert "stopped worker" not in (tmp_path / "a.log").read_text()  # nothing given back early
