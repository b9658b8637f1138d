"""Liveness and readiness, the brand stylesheet, and the app's lifespan."""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from archive.services import Services
from core.config import Settings
from core.db import Database
from portal import create_app

from .conftest import BASE, World


def test_healthz_and_readyz_ok(world: World) -> None:
    r = world.client.get("/healthz")
    assert r.status_code == 200 and r.text == "ok"
    r = world.client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {
        "status": "ok",
        "checks": {"database": "ok", "archive": "ok", "outbox": "ok"},
        "failed": [],
    }


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
    from archive.store import LocalStore

    blocker = tmp_path / "not-a-dir"
    blocker.write_bytes(b"")
    services.store = LocalStore(blocker / "archive")
    app = create_app(settings, services)
    with TestClient(app, base_url=BASE) as client:
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["failed"] == ["archive"]
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
        assert client.get("/readyz").status_code == 200
        assert client.get("/static/portal.css").status_code == 200
