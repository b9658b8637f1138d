"""``/metrics``: counts from a real message through the real gateway and delivery, the
queue gauges read from the database, no session needed, no addresses or content shown."""

from __future__ import annotations

import asyncio
import dataclasses

import httpx2
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from core.config.settings import Secret, Settings
from core.services import Services
from gateway.worker import run_once
from portal.app import create_app
from portal.ops import metrics_app
from tests.gateway import conftest as gw
from tests.gateway.conftest import asend, make_message

from .conftest import BASE

# the gateway's fixtures, shared: a sink relay, a real gateway, a tenant
sink, gw_settings, gw_services, tenant, gateway = (
    gw.sink,
    gw.gw_settings,
    gw.gw_services,
    gw.tenant,
    gw.gateway,
)
MARKER = "Zebra-Quokka-7731"


async def scrape(services: Services) -> tuple[str, dict[tuple[str, tuple], float]]:
    transport = httpx2.ASGITransport(app=metrics_app(services))
    async with httpx2.AsyncClient(transport=transport, base_url=BASE) as client:
        r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    samples: dict[tuple[str, tuple], float] = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return r.text, samples


def value(samples: dict[tuple[str, tuple], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def send(gateway, tenant, rcpts, subject=f"Secret {MARKER}") -> None:  # noqa: ANN001
    await asend(
        gateway,
        make_message(subject=subject, body=f"the code is {MARKER}\r\n", to=rcpts[0]),
        "alice@acme.example",
        rcpts,
        login=(tenant.username, tenant.password),
    )


async def test_counts_a_message_from_250_to_the_relay(gateway, tenant, gw_services, sink):
    _, before = await scrape(gw_services)
    await send(gateway, tenant, ["bob@partner.example"])

    text, mid = await scrape(gw_services)
    # read from the database at scrape time: the message waits for the pipeline
    assert value(mid, "sealmail_queue_depth", queue="intake", state="received") == 1
    assert value(mid, "sealmail_queue_oldest_age_seconds", queue="intake") >= 0
    accepted = "sealmail_messages_accepted_total"
    assert value(mid, accepted, tenant=tenant.id) - value(before, accepted, tenant=tenant.id) == 1
    replies = "sealmail_smtp_replies_total"
    assert value(mid, replies, code_class="2xx", code="250") > value(
        before, replies, code_class="2xx", code="250"
    )
    assert value(mid, replies, code_class="3xx", code="354") > value(
        before, replies, code_class="3xx", code="354"
    )

    await run_once(gw_services)
    assert len(await sink.wait_for(1)) == 1
    text, after = await scrape(gw_services)
    assert value(after, "sealmail_queue_depth", queue="intake", state="received") == 0
    assert value(after, "sealmail_queue_depth", queue="outbox", state="queued") == 0
    delivered = ("sealmail_deliveries_total", {"tenant": tenant.id, "kind": "clear"})
    assert (
        value(after, delivered[0], **delivered[1], result="sent")
        - value(before, delivered[0], **delivered[1], result="sent")
        == 1
    )
    decisions = "sealmail_pipeline_decisions_total"
    assert (
        value(after, decisions, tenant=tenant.id, disposition="clear")
        - value(before, decisions, tenant=tenant.id, disposition="clear")
        == 1
    )
    latency = "sealmail_delivery_latency_seconds_count"
    assert value(after, latency, kind="clear") - value(before, latency, kind="clear") == 1
    # ids and codes only: no address, subject or content
    # addresses, not bare names: a random tenant id may well contain "bob"
    for secret in (MARKER, "partner.example", "acme.example", "alice@", "bob@"):
        assert secret not in text


async def test_deferred_and_bounced_are_counted_and_the_outbox_depth_shows(
    gateway, tenant, gw_services, sink
):
    _, before = await scrape(gw_services)
    sink.rcpt_replies["carol@partner.example"] = "550 5.1.1 no such user here"
    sink.data_replies = ["451 4.3.0 try again later"]
    await send(gateway, tenant, ["bob@partner.example"])
    await run_once(gw_services)  # bob: 451 at DATA → deferred
    await send(gateway, tenant, ["carol@partner.example"])
    await run_once(gw_services)  # carol: 550 at RCPT → bounced, a DSN is queued
    _, after = await scrape(gw_services)

    def delta(result: str, kind: str = "clear") -> float:
        name, labels = "sealmail_deliveries_total", {"tenant": tenant.id, "kind": kind}
        return value(after, name, **labels, result=result) - value(
            before, name, **labels, result=result
        )

    assert delta("deferred") == 1
    assert delta("bounced") == 1
    assert value(after, "sealmail_queue_depth", queue="outbox", state="deferred") == 1
    assert value(after, "sealmail_queue_oldest_age_seconds", queue="outbox") > 0


def test_portal_serves_metrics_with_the_token_and_no_session(
    settings: Settings, services: Services
) -> None:
    token = "t" * 32
    settings = dataclasses.replace(settings, metrics_token=Secret(token))
    app = create_app(settings, dataclasses.replace(services, settings=settings))
    with TestClient(app, base_url=BASE) as client:
        r = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200
        assert "sealmail_queue_depth" in r.text
        assert "sealmail_messages_accepted_total" in r.text or "# HELP" in r.text
        assert "set-cookie" not in r.headers
        client.portal.call(services.db.dispose)


async def test_standalone_metrics_listener_in_serve(gw_settings: Settings, tenant) -> None:  # noqa: ANN001
    """``serve --role worker`` with ``metrics_listen`` answers /metrics on that address."""
    import socket

    from sealmail.server import serve

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = dataclasses.replace(gw_settings, metrics_listen=f"127.0.0.1:{port}")
    lines: list[str] = []
    task = asyncio.create_task(serve(settings, role="worker", announce=lines.append))
    try:
        for _ in range(100):
            if any("sealmail is running" in line for line in lines):
                break
            await asyncio.sleep(0.05)
        assert any(f"metrics listening on 127.0.0.1:{port}" in line for line in lines)
        async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            r = await client.get("/metrics")
            assert r.status_code == 200 and "sealmail_queue_depth" in r.text
            assert (await client.get("/healthz")).text == "ok"
    finally:
        import os
        import signal

        if lines:  # serve has its SIGTERM handler: it drains and returns
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.wait_for(task, 30)
        else:
            task.cancel()
