"""Delivery of a large object as a stream (issue 15, flat memory): DATA written in pieces
is the same on the wire as aiosmtplib's DATA of the whole message, whatever the pieces;
a refusal is a reply like any other; a failure midway closes the connection and the next
hop keeps nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import aiosmtplib
import pytest
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.delivery.relay import transaction
from gateway.delivery.streamed import DotStuffer, Streamed, send_data


def _whole(message: bytes) -> bytes:  # what aiosmtplib's execute_data_command writes
    return PERIOD_REGEX.sub(b"..", normalize_message_line_endings(message)) + b".\r\n"


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    st.binary(min_size=1, max_size=300).map(
        lambda b: bytes(b".\r\nab"[x % 5] for x in b)  # dots, CR, LF and letters
    ),
    st.lists(st.integers(0, 300), max_size=8),
)
def test_pieces_encode_as_the_whole_message(message: bytes, cuts: list[int]) -> None:
    edges = sorted({0, len(message), *(c for c in cuts if c <= len(message))})
    stuffer = DotStuffer()
    out = b"".join(stuffer.feed(message[a:b]) for a, b in zip(edges, edges[1:], strict=False))
    assert out + stuffer.end() == _whole(message)


def _message(size: int) -> bytes:
    line = b".a line that starts with a dot\r\nbare LF\nbare CR\rend\r\n"
    return b"Subject: big\r\nMessage-ID: <b@x>\r\n\r\n" + line * (size // len(line))


def _streamed(raw: bytes, piece: int = 65536, fail_after: int | None = None) -> Streamed:
    def chunks() -> Iterator[bytes]:
        for n, i in enumerate(range(0, len(raw), piece)):
            if fail_after is not None and n == fail_after:
                raise OSError("the store went away")
            yield raw[i : i + piece]

    return Streamed(raw[:40], chunks, len(raw))


async def _client(sink) -> aiosmtplib.SMTP:  # noqa: ANN001
    client = aiosmtplib.SMTP(hostname=sink.host, port=sink.port, timeout=30, start_tls=False)
    await client.connect()
    return client


async def test_streamed_data_arrives_as_whole_data_does(sink) -> None:  # noqa: ANN001
    raw = _message(6 * 1024 * 1024)
    client = await _client(sink)
    try:
        whole = await transaction(client, "a@acme.example", ["b@partner.example"], raw)
        streamed = await transaction(
            client, "a@acme.example", ["b@partner.example"], _streamed(raw, 65521)
        )
    finally:
        client.close()
    assert whole["b@partner.example"].ok and streamed["b@partner.example"].ok
    first, second = await sink.wait_for(2)
    assert second.content == first.content and len(second.content) > 6_000_000


async def test_refused_at_the_end_of_data_is_a_reply(sink) -> None:  # noqa: ANN001
    sink.data_replies.append("554 5.6.0 we do not take that")
    client = await _client(sink)
    try:
        result = await transaction(
            client, "a@acme.example", ["b@partner.example"], _streamed(_message(100_000))
        )
        assert result["b@partner.example"].code == 554
        # the connection is still good for the next message
        again = await transaction(
            client, "a@acme.example", ["b@partner.example"], _streamed(_message(100_000))
        )
        assert again["b@partner.example"].ok
    finally:
        client.close()
    assert len(sink.messages) == 1


async def test_failure_midway_closes_the_connection_and_nothing_arrives(sink) -> None:  # noqa: ANN001
    client = await _client(sink)
    await client.mail("a@acme.example")
    await client.rcpt("b@partner.example")
    with pytest.raises(OSError, match="went away"):
        await send_data(client, _streamed(_message(1_000_000), fail_after=3))
    assert not client.is_connected
    await asyncio.sleep(0.2)
    assert sink.messages == []
