"""Liveness and readiness, the brand stylesheet, and the app's lifespan."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from core.config.settings import Settings
from core.db import Database
from core.services import Services
from portal import ops
from portal.app import create_app

from .conftest import BASE, World


@pytest.fixture
def relay_listener() -> Iterator[str]:
    """Something listening where the relay is said to be (connections are only opened)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"127.0.0.1:{sock.getsockname()[1]}"


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"  # closed again: connections refused


def test_healthz_and_readyz_ok(world: World, relay_listener: str) -> None:
    world.services.settings = dataclasses.replace(world.services.settings, relay=relay_listener)
    r = world.client.get("/healthz")
    assert r.status_code == 200 and r.text == "ok"
    r = world.client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {
        "status": "ok",
        "checks": {
            "database": "ok",
            "archive": "ok",
            "outbox": "ok",
            "root_key": "ok",
            "relay": "ok",
        },
        "failed": [],
    }


def test_readyz_503_names_an_unreachable_relay_and_skips_mx(
    settings: Settings, services: Services
) -> None:
    services.settings = dataclasses.replace(settings, relay=closed_port())
    app = create_app(settings, services)
    with TestClient(app, base_url=BASE) as client:
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["failed"] == ["relay"]
        assert r.json()["checks"]["relay"] == "unavailable"
        services.settings = dataclasses.replace(settings, relay="mx")
        r = client.get("/readyz")
        assert r.status_code == 200
        assert r.json()["checks"]["relay"] == "mx" and r.json()["failed"] == []
        client.portal.call(services.db.dispose)


async def test_relay_answer_is_cached_for_a_few_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    relay = closed_port()
    assert await ops.relay_state(relay) == "unavailable"
    with socket.socket() as sock:  # now something listens there: the cached answer stands
        sock.bind(tuple(relay.rsplit(":", 1)[0:1]) + (int(relay.rsplit(":", 1)[1]),))
        sock.listen(4)
        assert await ops.relay_state(relay) == "unavailable"
        monkeypatch.setattr(ops, "RELAY_CACHE_SECONDS", 0.0)
        assert await ops.relay_state(relay) == "ok"


def test_readyz_503_when_the_database_is_unreachable(
    settings: Settings, services: Services
) -> None:
    # nothing listens on port 1: the connection is refused at once
    services.db = Database("postgresql://postgres@127.0.0.1:1/sealmail")
    app = create_app(settings, services)
    with TestClient(app, base_url=BASE) as client:
        r = client.get("/readyz")
        assert r.status_code == 503
        body = r.json()
        assert body["status"] == "unavailable"
        assert "database" in body["failed"] and "outbox" in body["failed"]
        assert body["checks"]["relay"] in ("ok", "unavailable")  # nothing to do with the db
        assert body["checks"]["archive"] == "ok"
        assert client.get("/healthz").status_code == 200  # alive, just not ready
        # a page that needs the database says so, readably, with a 503
        page = client.get("/m/sometoken")
        assert page.status_code == 503
        assert "try again in a few minutes" in page.text
        assert page.headers["content-security-policy"]
        client.portal.call(services.db.dispose)


def test_readyz_503_when_the_archive_is_unwritable(
    settings: Settings, services: Services, tmp_path: Path
) -> None:
    from core.storage.local import LocalStore

    blocker = tmp_path / "not-a-dir"
    blocker.write_bytes(b"")
    services.store = LocalStore(blocker / "archive")
    app = create_app(settings, services)
    with TestClient(app, base_url=BASE) as client:
        r = client.get("/readyz")
        assert r.status_code == 503
        assert "archive" in r.json()["failed"] and "database" not in r.json()["failed"]
        client.portal.call(services.db.dispose)


def test_brand_stylesheet_sets_only_a_safe_color(world: World) -> None:
    good = world.tenant("Acme", "acme.example", brand_color="#0a7d4f")
    bad = world.tenant("Globex", "globex.example", brand_color="red}*{top:9")
    r = world.client.get(f"/brand/{good}.css")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/css")
    assert "--brand: #0a7d4f;" in r.text
    r = world.client.get(f"/brand/{bad}.css")
    assert "top" not in r.text and "--brand: #1f4e79;" in r.text
    assert "--brand: #1f4e79;" in world.client.get("/brand/unknown.css").text


def test_app_opens_and_closes_its_own_services(settings: Settings) -> None:
    app = create_app(settings)  # nothing opened yet
    with TestClient(app, base_url=BASE) as client:
        assert client.get("/readyz").json()["checks"]["database"] == "ok"
        assert client.get("/static/portal.css").status_code == 200


def test_readyz_reports_each_tenants_next_hop_without_failing(
    settings: Settings, services: Services, relay_listener: str
) -> None:
    """Tenants handed back to their own Microsoft 365 endpoint: each endpoint's state is
    shown; one that is down delays only that tenant's mail, so readiness stays 200."""
    from core.accounts.tenants import create_tenant
    from core.models import Tenant

    down = closed_port()
    services.settings = dataclasses.replace(settings, relay=relay_listener)
    app = create_app(settings, services)
    with TestClient(app, base_url=BASE) as client:

        async def tenants() -> None:
            async with services.db.session() as s:
                for name, hop in (("Up", relay_listener), ("Down", down), ("Mx", "mx")):
                    made = await create_tenant(
                        s, services.keyring, name, [f"{name.lower()}.example"]
                    )
                    (await s.get(Tenant, made.tenant_id)).relay = hop
                await s.commit()

        client.portal.call(tenants)
        r = client.get("/readyz")
        assert r.status_code == 200, r.json()
        body = r.json()
        assert body["failed"] == []
        assert body["next_hops"] == {down: "unavailable"}  # the global relay is shown once
        assert body["degraded"] == [down]
        client.portal.call(services.db.dispose)


async def test_readyz_reports_a_kms_root_that_stops_answering(
    tmp_path: Path, db_url: str, relay_listener: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With root_key = aws-kms://..., readiness asks KMS (at most every few seconds): a
    disabled key or an unreachable KMS makes the instance unready."""
    import asyncio

    from sealmail.workdir import ensure_kms_derivation_secret
    from tests.conftest import make_settings
    from tests.core.test_keys_kms import kms_client, new_kms_key
    from tests.helpers.moto_server import MotoServer

    monkeypatch.setattr(ops, "RELAY_CACHE_SECONDS", 0.0)
    for k, v in MotoServer.ENV.items():
        monkeypatch.setenv(k, v)
    with MotoServer() as kms:
        arn = new_kms_key(kms.endpoint)
        settings = make_settings(
            tmp_path, db_url, root_key=f"aws-kms://{arn}", kms_endpoint_url=kms.endpoint
        )
        settings = dataclasses.replace(settings, relay=relay_listener)
        await asyncio.to_thread(ensure_kms_derivation_secret, settings)
        services = Services.open(settings)
        app = create_app(settings, services)

        def ready() -> tuple[int, dict]:
            with TestClient(app, base_url=BASE) as client:
                r = client.get("/readyz")
                client.portal.call(services.db.dispose)
                return r.status_code, r.json()

        code, body = await asyncio.to_thread(ready)
        assert code == 200 and body["checks"]["root_key"] == "ok", body
        kms_client(kms.endpoint).disable_key(KeyId=arn.rsplit("/", 1)[-1])
        code, body = await asyncio.to_thread(ready)
        assert code == 503 and body["failed"] == ["root_key"], body
        kms_client(kms.endpoint).enable_key(KeyId=arn.rsplit("/", 1)[-1])
        assert (await asyncio.to_thread(ready))[0] == 200
        kms.stop()
        code, body = await asyncio.to_thread(ready)
        assert code == 503 and body["failed"] == ["root_key"], body
        await services.close()
