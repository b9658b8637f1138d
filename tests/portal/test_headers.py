"""Every kind of portal response carries the security headers, ``frame-ancestors`` included:
pages, JSON, attachment and archive (.eml) downloads, static files, the brand stylesheet,
redirects, 404, 405 and 500; and no redirect is built from the request's ``Host``."""

from __future__ import annotations

import io
import zipfile

import httpx2
import pytest

from tests.portal.conftest import World
from tests.portal.test_admin_archive import api_key, archive_messages

BOB = "bob@client.example"


def _assert_headers(r: httpx2.Response, frame_ancestors: str = "'none'") -> None:
    where = f"{r.request.method} {r.request.url.path} -> {r.status_code}"
    h = r.headers
    csp = h.get("content-security-policy", "")
    assert f"frame-ancestors {frame_ancestors}" in csp, where
    assert h.get("x-content-type-options") == "nosniff", where
    assert h.get("referrer-policy") == "no-referrer", where
    assert h.get("strict-transport-security", "").startswith("max-age="), where
    assert h.get("x-frame-options") in ("DENY", "SAMEORIGIN"), where
    assert h.get("cache-control"), where


@pytest.mark.timeout(60)
def test_every_kind_of_response_carries_the_headers(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = world.tenant("Acme", "acme.example")
    world.run(archive_messages, world.services, t, "acme.example", 2)
    key = world.run(api_key, world.services, t, "compliance")
    auth = {"Authorization": f"Bearer {key}"}
    sealed = world.seal(
        t, recipients=[BOB], html="<p>hi</p>", attachments=[("a.txt", "text/plain", b"a")]
    )
    c = world.client
    kinds = {
        "static": c.get("/static/portal.css"),
        "brand css": c.get(f"/brand/{t}.css"),
        "json": c.get("/api/v1/openapi.json"),
        "json with key": c.get("/api/v1/archive/search", headers=auth),
        "json 401": c.get("/api/v1/archive/search"),
        "404": c.get("/no/such/page"),
        "405": c.get("/logout"),
        "redirect 303": c.get("/admin", follow_redirects=False),
        "slash redirect": c.get("/admin/login/", follow_redirects=False),
        "probe": c.get("/healthz"),
        "page": world.open_link(sealed.tokens[BOB]),
    }
    export = c.get("/api/v1/archive/export", params={"format": "zip"}, headers=auth)
    kinds["archive export (.eml)"] = export
    world.sign_in(sealed.tokens[BOB])
    kinds["message page"] = c.get(f"/messages/{sealed.message_id}")
    kinds["attachment"] = c.get(f"/messages/{sealed.message_id}/attachments/0")
    assert kinds["redirect 303"].status_code == 303
    assert kinds["slash redirect"].status_code == 307
    assert kinds["404"].status_code == 404 and kinds["405"].status_code == 405
    assert export.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(export.content)).namelist()
    assert any(n.endswith(".eml") for n in names), names
    assert kinds["attachment"].content == b"a"
    for kind, r in kinds.items():
        assert r.status_code < 500, kind
        _assert_headers(r)
    _assert_headers(c.get(f"/messages/{sealed.message_id}/body"), frame_ancestors="'self'")

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(world.services.vault, "read", broken)
    c._transport.raise_server_exceptions = False  # type: ignore[attr-defined]
    r = c.get(f"/messages/{sealed.message_id}")
    assert r.status_code == 500
    _assert_headers(r)


@pytest.mark.timeout(60)
def test_slash_redirects_are_relative_and_ignore_host(world: World) -> None:
    evil = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}
    for path, target in (
        ("/admin/login/", "/admin/login"),
        ("/inbox/", "/inbox"),
        ("/sent/login/?x=1", "/sent/login?x=1"),
        ("/healthz/", "/healthz"),
    ):
        r = world.client.get(path, headers=evil, follow_redirects=False)
        assert r.status_code == 307, path
        assert r.headers["location"] == target, path
    # a path that only looks like another host never becomes //host
    r = world.client.get("//evil.example/", headers=evil, follow_redirects=False)
    assert "location" not in r.headers
    for path in ("/no/such/", "/admin/", "/"):
        r = world.client.get(path, headers=evil, follow_redirects=False)
        assert "evil.example" not in r.headers.get("location", ""), path
