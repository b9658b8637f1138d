"""``log_format = json``: a message through the real gateway, pipeline and delivery; every
line is JSON, the lines about the message carry its queue id and tenant, and nothing
from its subject or body is ever logged. Text format shows the same fields."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from core import logcontext
from core.models import Message
from gateway.worker import run_once
from sealmail.logs import setup_logging
from tests.gateway import conftest as gw
from tests.gateway.conftest import asend, make_message

# the gateway's fixtures, shared: a sink relay, a real gateway, a tenant
sink, gw_settings, gw_services, tenant, gateway = (
    gw.sink,
    gw.gw_settings,
    gw.gw_services,
    gw.tenant,
    gw.gateway,
)
MARKER = "Okapi-Marmalade-4417"


@pytest.fixture
def captured() -> Iterator[callable]:  # type: ignore[valid-type]
    """Install ``setup_logging`` on a buffer; put the root logger back afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    buffer = io.StringIO()

    def install(fmt: str) -> io.StringIO:
        setup_logging(fmt, "debug", stream=buffer)
        return buffer

    yield install
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


async def queue_ids(services) -> list[str]:  # noqa: ANN001
    async with services.db.session() as s:
        return list((await s.scalars(select(Message.id))).all())


async def test_json_lines_name_the_message_and_never_its_content(
    captured, gateway, tenant, gw_services, sink
):
    buffer = captured("json")
    message = make_message(
        subject=f"[secure] Payroll {MARKER}",
        body=f"The salary of {MARKER} is attached.\r\n",
        message_id=f"<{MARKER.lower()}@acme.example>",
    )
    # two messages: their lines must not be mixed up
    await asend(
        gateway,
        message,
        "alice@acme.example",
        ["bob@partner.example"],
        login=(tenant.username, tenant.password),
    )
    await asend(
        gateway,
        make_message(subject="other"),
        "alice@acme.example",
        ["carol@partner.example"],
        login=(tenant.username, tenant.password),
    )
    await run_once(gw_services)  # pipeline (portal: a notification is queued) and delivery
    await run_once(gw_services)
    assert len(await sink.wait_for(2)) >= 2

    lines = buffer.getvalue().splitlines()
    assert lines
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    qids = await queue_ids(gw_services)
    assert len(qids) == 2
    for qid in qids:
        about = [r for r in records if r.get("queue_id") == qid]
        loggers = {r["logger"] for r in about}
        assert {
            "sealmail.gateway.intake",
            "sealmail.gateway.pipeline",
            "sealmail.gateway.delivery",
        } <= loggers, loggers
        assert all(r["tenant"] == tenant.id for r in about)
        # a line that names the queue id is a line about that message
        for r in records:
            if qid in r["msg"]:
                assert r.get("queue_id") == qid, r
    for r in records:
        for key in ("ts", "level", "logger", "msg"):
            assert key in r
    text = buffer.getvalue()
    assert MARKER not in text and MARKER.lower() not in text
    assert "Payroll" not in text and "salary" not in text


def test_text_format_shows_queue_id_and_tenant(captured) -> None:  # noqa: ANN001
    buffer = captured("text")
    log = logging.getLogger("sealmail.test")
    log.info("outside any message")
    with logcontext.log_context(queue_id="Q123ABC", tenant="t_acme"):
        log.info("inside")
        log.info("explicit", extra={"queue_id": "OTHER"})  # an explicit value wins
    lines = buffer.getvalue().splitlines()
    assert "queue_id" not in lines[0] and "tenant=" not in lines[0]
    assert lines[1].endswith("inside queue_id=Q123ABC tenant=t_acme")
    assert "queue_id=OTHER" in lines[2]
    assert logcontext.current() == {}
