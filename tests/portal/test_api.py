"""The tenant API: a tenant's admin sees its own message's evidence, never another's."""

from __future__ import annotations

from core.accounts.tenants import create_tenant
from tests.portal.conftest import World


async def _tenant_with_key(world: World, name: str, domain: str) -> tuple[str, str]:
    async with world.services.db.session() as s:
        creds = await create_tenant(s, world.services.keyring, name, [domain])
        await s.commit()
    return creds.tenant_id, creds.api_key


def test_admin_sees_own_message_and_not_another_tenants(world: World) -> None:
    a_id, a_key = world.run(_tenant_with_key, world, "TenantA", "a.example")
    b_id, b_key = world.run(_tenant_with_key, world, "TenantB", "b.example")
    sealed = world.seal(a_id, recipients=["bob@recipient.test"], subject="Secret plans")

    own = world.client.get(
        f"/api/v1/messages/{sealed.message_id}", headers={"Authorization": f"Bearer {a_key}"}
    )
    assert own.status_code == 200
    data = own.json()
    assert data["id"] == sealed.message_id and data["tenant_id"] == a_id
    assert "Secret plans" not in own.text  # evidence, never content

    foreign = world.client.get(
        f"/api/v1/messages/{sealed.message_id}", headers={"Authorization": f"Bearer {b_key}"}
    )
    missing = world.client.get(
        "/api/v1/messages/NOSUCHMESSAGE", headers={"Authorization": f"Bearer {b_key}"}
    )
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == missing.json()

    anonymous = world.client.get(f"/api/v1/messages/{sealed.message_id}")
    wrong = world.client.get(
        f"/api/v1/messages/{sealed.message_id}", headers={"Authorization": "Bearer smk_nope"}
    )
    assert anonymous.status_code == wrong.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"


def test_openapi_document_lists_the_api(world: World) -> None:
    doc = world.client.get("/api/v1/openapi.json")
    assert doc.status_code == 200
    assert "/api/v1/messages/{message_id}" in doc.json()["paths"]
