"""DATA is sealed while it streams in: memory does not grow with the message, and a
message refused half way leaves nothing behind in the archive."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from bench.intake_memory import measure
from gateway.intake.handler import build_gateway
from tests.gateway.intake.test_intake import session_run


def test_large_message_is_accepted_with_bounded_memory() -> None:
    before, after = measure(60)  # a gateway subprocess; raises unless the 250 came
    assert (after - before) / 1024 < 30, f"peak RSS grew {(after - before) / 1024:.0f} MB"


def _archive_files(services) -> list[str]:  # noqa: ANN001
    root = Path(services.settings.archive_url.removeprefix("file://"))
    return sorted(str(p) for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("size", [3 * 1024 * 1024])
async def test_too_big_midway_leaves_no_partial_object(gw_services, tenant, size) -> None:
    services = type(gw_services)(
        **{
            **gw_services.__dict__,
            "settings": replace(gw_services.settings, smtp_max_message_size=1024 * 1024),
        }
    )
    gw = build_gateway(services)
    address = await gw.start()
    try:
        files = _archive_files(services)
        body = (b"y" * 70 + b"\r\n") * (size // 72)
        big = b"From: <alice@acme.example>\r\nSubject: big\r\n\r\n" + body
        replies = await asyncio.to_thread(
            session_run,
            address,
            [
                ("MAIL", "FROM:<alice@acme.example>"),
                ("RCPT", "TO:<b@partner.example>"),
                ("DATA", big + b".\r\n"),
                ("NOOP", ""),
            ],
            login=(tenant.username, tenant.password),
        )
        assert replies[3][0] == 552 and replies[4][0] == 250
        await asyncio.sleep(0.2)  # the writer thread drops its temp file
        assert _archive_files(services) == files
        assert not [f for f in _archive_files(services) if f.endswith(".tmp")]
    finally:
        await gw.stop(1)
