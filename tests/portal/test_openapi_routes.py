"""The OpenAPI document and the served route table are the same API: every operation under
``/api/`` that the portal serves is documented, and the document names none that it does not
serve (one missing or extra fails, named). The document is valid OpenAPI 3.1, every
operation says its security and documents its responses with JSON schemas, and every
``/api/`` error, a handler's or the router's (404, 405), is ``{"error": ...}`` JSON."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate
from starlette.routing import Route
from starlette.testclient import TestClient

from core.config.settings import Settings
from core.services import Services
from portal.api.openapi import document
from portal.app import create_app
from portal.routes import routes
from tests.portal.conftest import BASE, World

_NO_JSON_BODY = {("/api/v1/archive/export", "get")}  # a download: mbox or zip


def _served() -> set[tuple[str, str]]:
    out = set()
    for r in routes():
        if isinstance(r, Route) and r.path.startswith("/api/"):
            out |= {(r.path, m.lower()) for m in (r.methods or ()) if m != "HEAD"}
    return out


def _documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (path, method)
        for path, item in doc["paths"].items()
        if path.startswith("/api/")
        for method in item
        if method in ("get", "put", "post", "delete", "patch", "options", "head", "trace")
    }


def test_every_served_operation_is_documented_and_no_other() -> None:
    served, documented = _served(), _documented(document())
    assert not served - documented, f"served but not documented: {sorted(served - documented)}"
    assert not documented - served, f"documented but not served: {sorted(documented - served)}"


def test_the_document_is_valid_openapi_3_1_with_schemas() -> None:
    doc = document()
    validate(doc)  # raises on an invalid document
    assert doc["openapi"].startswith("3.1")
    for path, item in doc["paths"].items():
        for method, op in item.items():
            where = f"{method.upper()} {path}"
            assert "security" in op, f"{where} does not say its security"
            assert op.get("summary"), f"{where} has no summary"
            for code, response in op["responses"].items():
                if code.startswith("2") and (path, method) in _NO_JSON_BODY:
                    continue
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                assert schema, f"{where} {code} has no JSON schema"
            body = op.get("requestBody")
            if body:
                assert all("schema" in c for c in body["content"].values()), f"{where} body"


def test_api_errors_are_json_everywhere(world: World) -> None:
    c = world.client
    r = c.get("/api/v1/no-such-thing")
    assert r.status_code == 404 and r.headers["content-type"] == "application/json"
    assert r.json()["error"]
    r = c.get("/api/nothing/here/either")
    assert r.status_code == 404 and "error" in r.json()
    r = c.delete("/api/v1/policy")
    assert r.status_code == 405 and r.json()["error"]
    assert set(r.headers["allow"].replace(" ", "").split(",")) >= {"GET", "PUT"}
    r = c.get("/api/v1/users")
    assert r.status_code == 401 and r.json() == {"error": "missing bearer API key"}
    r = c.post("/api/v1/users", headers={"Authorization": "Bearer smk_nope"}, content=b"{")
    assert r.status_code == 401 and r.headers["content-type"] == "application/json"
    # outside /api/ the people's pages stay HTML
    assert "text/html" in c.get("/no-such-page").headers["content-type"]


def test_a_server_error_under_api_is_json_too(
    settings: Settings, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("boom")

    monkeypatch.setattr("portal.api.openapi.document", broken)
    app = create_app(settings, services)
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as client:
        r = client.get("/api/v1/openapi.json")
        assert r.status_code == 500 and r.headers["content-type"] == "application/json"
        assert "boom" not in r.text and r.json()["error"]
        client.portal.call(services.db.dispose)
