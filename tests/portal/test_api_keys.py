"""``/api/v1/keys``: a tenant's admin imports, lists and removes recipient keys; another
tenant sees none of them; refusals are 422 with the reason."""

from __future__ import annotations

from core.accounts.tenants import create_tenant
from tests.helpers import keygen
from tests.helpers.keygen import Certs, PgpKeys
from tests.portal.conftest import World

pgp_keys, certs = keygen.pgp_keys, keygen.certs  # session fixtures


async def _tenant_with_key(world: World, name: str, domain: str) -> tuple[str, str]:
    async with world.services.db.session() as s:
        creds = await create_tenant(s, world.services.keyring, name, [domain])
        await s.commit()
    return creds.tenant_id, creds.api_key


def test_keys_api(world: World, pgp_keys: PgpKeys, certs: Certs) -> None:
    _a, a_key = world.run(_tenant_with_key, world, "TenantA", "a.example")
    _b, b_key = world.run(_tenant_with_key, world, "TenantB", "b.example")
    a = {"Authorization": f"Bearer {a_key}"}
    b = {"Authorization": f"Bearer {b_key}"}

    r = world.client.post(
        "/api/v1/keys",
        content=pgp_keys.public["ed"],
        headers={**a, "Content-Type": "application/pgp-keys"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["keys"][0]["email"] == "ed@recipient.test"
    r = world.client.post("/api/v1/keys", content=certs.pem["carol"], headers=a)
    assert r.status_code == 201 and r.json()["keys"][0]["kind"] == "smime"

    r = world.client.post("/api/v1/keys", content=pgp_keys.public["weak"], headers=a)
    assert r.status_code == 422 and "too weak" in r.json()["error"]
    r = world.client.post("/api/v1/keys", content=certs.key_pem["carol"], headers=a)
    assert r.status_code == 422 and "private key" in r.json()["error"]
    r = world.client.post("/api/v1/keys", content=b"x" * (2 << 20), headers=a)
    assert r.status_code == 413

    listed = world.client.get("/api/v1/keys", headers=a).json()["keys"]
    assert sorted(k["email"] for k in listed) == ["carol@recipient.test", "ed@recipient.test"]
    assert "material" not in listed[0]
    assert world.client.get("/api/v1/keys", headers=b).json() == {"keys": []}

    fpr = pgp_keys.fingerprint["ed"]
    assert world.client.delete(f"/api/v1/keys/{fpr}", headers=b).status_code == 404
    r = world.client.delete(f"/api/v1/keys/{fpr}", headers=a)
    assert r.status_code == 200 and r.json()["removed"][0]["fingerprint"] == fpr
    assert world.client.delete(f"/api/v1/keys/{fpr}", headers=a).status_code == 404
    listed = world.client.get("/api/v1/keys", headers=a).json()["keys"]
    assert [k["email"] for k in listed] == ["carol@recipient.test"]

    assert world.client.get("/api/v1/keys").status_code == 401
    assert world.client.post("/api/v1/keys", content=b"x").status_code == 401
    doc = world.client.get("/api/v1/openapi.json").json()["paths"]
    assert {"get", "post"} <= set(doc["/api/v1/keys"]) and "delete" in doc[
        "/api/v1/keys/{fingerprint}"
    ]
    assert "/api/v1/messages/{message_id}" in doc
