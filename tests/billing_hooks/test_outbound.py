"""Outbound webhooks arrive signed at a small local HTTP receiver, and a 500 is retried."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from billing_hooks import outbound
from billing_hooks.models import OutboundWebhook
from billing_hooks.signing import HEADER, verify
from core.db import Database
from tests.conftest import make_settings

OUT_SECRET = "whsec_out_abcdef"


class Receiver:
    def __init__(self, fail_first: int) -> None:
        self.fail_first = fail_first
        self.requests: list[tuple[str, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((self.headers.get(HEADER, ""), body))
                status = 500 if len(receiver.requests) <= receiver.fail_first else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/sealmail"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail_first=1)
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


async def test_signed_delivery_with_retry_after_500(
    tmp_path: Path, db_url: str, receiver: Receiver
) -> None:
    settings = make_settings(
        tmp_path,
        db_url,
        billing_outbound_url=receiver.url,
        billing_outbound_secret=OUT_SECRET,
    )
    db = Database(db_url)
    try:
        async with db.session() as s:
            row = outbound.queue(s, "fee.late", {"account": "acct_1", "amount": 2500})
            event_id = row.id
            await s.commit()
        assert await outbound.deliver_due(settings, db) == (0, 1)  # the receiver said 500
        async with db.session() as s:
            row = await s.get(OutboundWebhook, event_id)
            assert row is not None
            assert (row.attempts, row.delivered_at, row.last_error) == (1, None, "HTTP 500")
            assert row.next_attempt_at > row.created_at + 25  # backed off, not due yet
        assert await outbound.deliver_due(settings, db) == (0, 0)  # nothing due yet
        async with db.session() as s:  # time passes
            await s.execute(update(OutboundWebhook).values(next_attempt_at=0.0))
            await s.commit()
        assert await outbound.deliver_due(settings, db) == (1, 0)
        assert await outbound.deliver_due(settings, db) == (0, 0)  # delivered once
        async with db.session() as s:
            row = await s.get(OutboundWebhook, event_id)
            assert row is not None and row.delivered_at is not None and row.attempts == 2
    finally:
        await db.dispose()

    assert len(receiver.requests) == 2
    for header, body in receiver.requests:
        verify(header, body, OUT_SECRET)  # raises if not signed with our secret
        sent = json.loads(body)
        assert (sent["id"], sent["type"]) == (event_id, "fee.late")
        assert sent["data"] == {"account": "acct_1", "amount": 2500}
    with pytest.raises(Exception, match="does not match"):
        verify(receiver.requests[0][0], receiver.requests[0][1], "another secret")


def test_backoff_grows_and_is_capped() -> None:
    waits = [outbound.backoff(n) for n in range(1, 15)]
    assert waits[0] == 30 and waits[1] == 60 and waits[2] == 120
    assert waits == sorted(waits) and waits[-1] == outbound.MAX_BACKOFF
