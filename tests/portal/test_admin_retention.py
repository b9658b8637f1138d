"""/admin/retention and /api/v1/archive/holds on both databases: retention settings
(admins only), legal holds placed and released from the page and the API, CSRF, tenant
isolation, JSON errors."""

from __future__ import annotations

from sqlalchemy import select

from archive.models import ArchiveEntry
from core.models import AuditEvent, Tenant
from core.services import Services
from tests.archive.test_retention import archived
from tests.portal.conftest import World, csrf_of
from tests.portal.test_admin import _add_user, _api_key, sign_in


async def _entry(services: Services, entry_id: str) -> ArchiveEntry:
    async with services.db.session() as s:
        row = await s.get(ArchiveEntry, entry_id)
        assert row is not None
        return row


async def _tenant(services: Services, tenant_id: str) -> Tenant:
    async with services.db.session() as s:
        row = await s.get(Tenant, tenant_id)
        assert row is not None
        return row


async def _actions(services: Services) -> list[str]:
    async with services.db.session() as s:
        return list((await s.execute(select(AuditEvent.action))).scalars())


def test_retention_and_holds_page(world: World) -> None:
    a = world.tenant("Acme", "acme.example")
    world.run(_add_user, world.services, a, "admin@acme.example", "admin")
    world.run(_add_user, world.services, a, "officer@acme.example", "compliance")
    entry = world.run(archived, world.services, a, "merger talks")
    world.run(archived, world.services, a, "lunch")

    officer = world.new_client()
    sign_in(world, "officer@acme.example", officer)
    page = officer.get("/admin/retention")
    assert page.status_code == 200
    assert "2557 days (about 7.0 years)" in page.text and "90 days" in page.text
    assert "No legal holds." in page.text
    csrf = csrf_of(page.text)
    # a compliance officer places holds but does not change retention
    r = officer.post("/admin/retention", data={"csrf": csrf, "archive_retention": "1d"})
    assert r.status_code == 404
    assert officer.post("/admin/holds", data={"kind": "search", "name": "x"}).status_code == 403
    r = officer.post(
        "/admin/holds",
        data={
            "csrf": csrf,
            "kind": "search",
            "name": "Case 17",
            "reason": "litigation",
            "subject": "merger",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/admin/retention?done=placed"
    page = officer.get("/admin/retention?done=placed")
    assert "Legal hold placed." in page.text and "Case 17" in page.text
    assert "1 message" in page.text and "in force" in page.text
    assert world.run(_entry, world.services, entry.id).legal_hold is True
    r = officer.post("/admin/holds", data={"csrf": csrf, "kind": "search", "name": "empty"})
    assert r.status_code == 400 and "search criterion" in r.text

    hold_id = page.text.split('action="/admin/holds/')[1].split("/release")[0]
    r = officer.post(f"/admin/holds/{hold_id}/release", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    assert world.run(_entry, world.services, entry.id).legal_hold is False
    r = officer.post(f"/admin/holds/{hold_id}/release", data={"csrf": csrf})
    assert r.status_code == 400 and "already released" in r.text
    assert officer.post("/admin/holds/h_nothere/release", data={"csrf": csrf}).status_code == 404

    admin = world.new_client()
    sign_in(world, "admin@acme.example", admin)
    csrf = csrf_of(admin.get("/admin/retention").text)
    r = admin.post(
        "/admin/retention",
        data={"csrf": csrf, "archive_retention": "10y", "portal_retention": "30d"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    t = world.run(_tenant, world.services, a)
    assert (t.archive_retention_days, t.portal_retention_days) == (3653, 30)
    r = admin.post("/admin/retention", data={"csrf": csrf, "archive_retention": "forever"})
    assert r.status_code == 400 and "archive retention" in r.text
    actions = world.run(_actions, world.services)
    assert {"archive.hold.place", "archive.hold.release", "tenant.retention"} <= set(actions)


def test_holds_api(world: World) -> None:
    a = world.tenant("Acme", "acme.example")
    b = world.tenant("Beta", "beta.example")
    key_a = world.run(_api_key, world.services, a)
    key_b = world.run(_api_key, world.services, b)
    entry = world.run(archived, world.services, a, "board minutes", message_id="m_q1")
    auth_a = {"Authorization": f"Bearer {key_a}"}
    auth_b = {"Authorization": f"Bearer {key_b}"}

    assert world.client.get("/api/v1/archive/holds").status_code == 401
    r = world.client.post(
        "/api/v1/archive/holds",
        headers=auth_a,
        json={"kind": "message", "name": "Case 9", "message": "m_q1"},
    )
    assert r.status_code == 201, r.text
    hold = r.json()
    assert hold["kind"] == "message" and hold["items"] == 1 and hold["active"]
    assert world.run(_entry, world.services, entry.id).legal_hold is True
    r = world.client.post(
        "/api/v1/archive/holds",
        headers=auth_a,
        json={
            "kind": "search",
            "name": "S",
            "criteria": {"subject": "board", "has_attachment": False},
        },
    )
    assert r.status_code == 201 and r.json()["items"] == 1 and r.json()["criteria_hash"]
    r = world.client.post(
        "/api/v1/archive/holds", headers=auth_a, json={"kind": "tenant", "name": "All"}
    )
    assert r.status_code == 201 and r.json()["items"] == 0

    listed = world.client.get("/api/v1/archive/holds", headers=auth_a).json()["holds"]
    assert len(listed) == 3
    assert world.client.get("/api/v1/archive/holds", headers=auth_b).json() == {"holds": []}
    # another tenant's key cannot hold this tenant's message or release its holds
    r = world.client.post(
        "/api/v1/archive/holds",
        headers=auth_b,
        json={"kind": "message", "name": "x", "message": "m_q1"},
    )
    assert r.status_code == 404 and "error" in r.json()
    url = f"/api/v1/archive/holds/{hold['id']}/release"
    assert world.client.post(url, headers=auth_b).status_code == 404
    r = world.client.post(url, headers=auth_a)
    assert r.status_code == 200 and r.json()["released_at"]
    assert world.client.post(url, headers=auth_a).status_code == 409
    # still held by the search hold
    assert world.run(_entry, world.services, entry.id).legal_hold is True
    assert len(world.client.get("/api/v1/archive/holds?all=1", headers=auth_a).json()["holds"]) == 3
    assert len(world.client.get("/api/v1/archive/holds", headers=auth_a).json()["holds"]) == 2

    for body, status in (
        (b"not json", 400),
        (b"[1]", 400),
        (b'{"kind": "search", "name": "x", "criteria": {"subject": 5}}', 400),
        (b'{"kind": "bogus", "name": "x"}', 400),
        (b'{"kind": "search", "name": "x", "criteria": {"after": "yesterday"}}', 400),
    ):
        r = world.client.post("/api/v1/archive/holds", headers=auth_a, content=body)
        assert r.status_code == status and r.json()["error"], body
    spec = world.client.get("/api/v1/openapi.json").json()
    assert "/api/v1/archive/holds" in spec["paths"]
