"""``worker_processes``: ``sealmail serve`` runs the pipeline and delivery in processes
beside its own, restarts one that dies, takes them along when it is killed, and stops them
on SIGTERM; mail flows through them as through one process."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from pathlib import Path

from tests.e2e.conftest import Product
from tests.e2e.mail import make_message, send
from tests.helpers.smtp_sink import SmtpSink


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def workers(pid: int) -> list[int]:
    out = []
    for child in children(pid):
        try:
            cmd = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"sealmail.worker_process" in cmd:
            out.append(child)
    return sorted(out)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_until(check, timeout: float = 30.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.1)


def processed(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        return conn.execute("SELECT count(*) FROM messages WHERE state = 'processed'").fetchone()[0]


def test_two_worker_processes_deliver_restart_and_die_with_serve(
    tmp_path: Path, sink: SmtpSink
) -> None:
    product = Product(tmp_path / "sealmail", sink.port)
    product.init(worker_processes="2", queue_poll_interval="30s")
    tenant = product.create_tenant("Acme", "acme.example")
    creds = tenant["smtp_username"], tenant["smtp_password"]
    product.start()
    assert product.proc is not None
    serve = product.proc.pid
    wait_until(lambda: len(workers(serve)) == 2)
    first = workers(serve)
    assert "(2 processes)" in product.logs()

    # the wake-up crosses to the workers: with a 30 s poll, mail moves only if it does
    for n in range(6):
        msg = make_message(f"w{n}", "hello\n", to=f"bob{n}@partner.example")
        assert send(product.smtp_port, msg, *creds).startswith("2.0.0 queued as")
    sink.wait_for(lambda m: True, count=6)
    assert processed(product.root / "var" / "sealmail.db") == 6

    # a worker that dies is started again, and mail still moves
    os.kill(first[0], signal.SIGKILL)
    wait_until(lambda: len(workers(serve)) == 2 and workers(serve) != first)
    assert "starting it again" in product.logs()
    msg = make_message("after", "hello again\n", to="carol@partner.example")
    assert send(product.smtp_port, msg, *creds).startswith("2.0.0 queued as")
    sink.wait_for(lambda m: True, count=7)

    # SIGKILL of serve alone (not its group) takes its workers with it
    now = workers(serve)
    os.kill(serve, signal.SIGKILL)
    product.proc.wait(10)
    wait_until(lambda: not any(alive(pid) for pid in now), timeout=10)
    product.proc = None

    # SIGTERM stops serve and its workers, exit 0
    product.start()
    assert product.proc is not None
    serve = product.proc.pid
    wait_until(lambda: len(workers(serve)) == 2)
    again = workers(serve)
    product.proc.send_signal(signal.SIGTERM)
    assert product.proc.wait(60) == 0
    wait_until(lambda: not any(alive(pid) for pid in again), timeout=10)
    product.proc = None


def test_one_worker_process_runs_inside_serve(tmp_path: Path, sink: SmtpSink) -> None:
    product = Product(tmp_path / "sealmail", sink.port)
    product.init(worker_processes="1")
    tenant = product.create_tenant("Acme", "acme.example")
    product.start()
    assert product.proc is not None
    msg = make_message("one", "hello\n", to="bob@partner.example")
    assert send(product.smtp_port, msg, tenant["smtp_username"], tenant["smtp_password"])
    sink.wait_for(lambda m: True)
    assert workers(product.proc.pid) == []
    assert "(1 process)" in product.logs()
