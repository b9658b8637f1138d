"""A capturing SMTP sink on a loopback port, acting as sealmail's relay in tests.

It can be told to answer 451 or 550 (for all recipients or a count of times), the way
Mailman's ``testing/mta.py`` does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import threading
import time
from collections.abc import Callable

from aiosmtpd.controller import Controller


@dataclasses.dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    at: float


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: ANN001
        reply = self.sink._next_reply()
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001
        if self.sink.stall.is_set():
            # hold the client at DATA (its worker keeps its claim) until released; what
            # was held is then refused, so a client killed meanwhile leaves no copy here
            with self.sink._lock:
                self.sink.stalled += 1
            while self.sink.stall.is_set():
                await asyncio.sleep(0.05)
            return "451 4.3.0 held by the test sink"
        with self.sink._lock:
            self.sink.messages.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content, time.time())
            )
        return "250 2.0.0 stored"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmtpSink:
    """``with SmtpSink() as sink:`` → ``sink.port``, ``sink.messages``, ``sink.wait_for(...)``."""

    def __init__(self, port: int | None = None, data_size_limit: int = 33554432) -> None:
        self.port = port or free_port()
        self.messages: list[Received] = []
        self._lock = threading.Lock()
        self._replies: list[str] = []
        self.always: str | None = None
        self.stall = threading.Event()  # set: hold every DATA until cleared
        self.stalled = 0  # how many DATA commands were held so far
        self.controller = Controller(
            _Handler(self),
            hostname="127.0.0.1",
            port=self.port,
            ready_timeout=10,
            data_size_limit=data_size_limit,  # aiosmtpd's default: 32 MiB
        )

    def answer(self, reply: str, times: int = 1) -> None:
        """Answer ``reply`` to the next ``times`` RCPT commands."""
        with self._lock:
            self._replies.extend([reply] * times)

    def _next_reply(self) -> str | None:
        with self._lock:
            if self._replies:
                return self._replies.pop(0)
            return self.always

    def start(self) -> SmtpSink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for(
        self, predicate: Callable[[Received], bool], timeout: float = 30.0, count: int = 1
    ) -> list[Received]:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                found = [m for m in self.messages if predicate(m)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"sink got {len(found)} of {count} expected messages in {timeout}s "
                    f"({len(self.messages)} messages in all)"
                )
            time.sleep(0.05)
