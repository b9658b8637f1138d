"""``/api/v1/tenants`` with a partner key (issue 14, item 2): two partners each see and change
only their own tenants; a tenant's own key gets 403, a revoked or unknown key 401; a trial
created with a last day of yesterday is shown as trial-ended and converted to paid; every
change is in the tenant's audit log under the key's name."""

from __future__ import annotations

import datetime

from sqlalchemy import select

from core.accounts.partner_users import create_partner_key, revoke_partner_key
from core.accounts.partners import create_partner
from core.accounts.tenants import create_tenant
from core.models import AuditEvent, Tenant
from core.services import Services
from tests.portal.conftest import World


async def _partner_with_key(services: Services, name: str) -> tuple[str, str]:
    async with services.db.session() as s:
        p = await create_partner(s, name)
        key, _row = await create_partner_key(s, p.id, "PSA", "cli")
        await s.commit()
        return p.id, key


async def _tenant(
    services: Services, partner_id: str | None, name: str, domain: str
) -> tuple[str, str]:
    async with services.db.session() as s:
        creds = await create_tenant(s, services.keyring, name, [domain], partner=partner_id)
        await s.commit()
        return creds.tenant_id, creds.api_key


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_partner_api_tenants(world: World) -> None:
    pa, key_a = world.run(_partner_with_key, world.services, "MSP A")
    pb, key_b = world.run(_partner_with_key, world.services, "MSP B")
    tb, _ = world.run(_tenant, world.services, pb, "Bravo", "bravo.example")
    _own, tenant_key = world.run(_tenant, world.services, None, "Solo", "solo.example")
    c = world.client
    assert c.get("/api/v1/tenants").status_code == 401
    assert c.get("/api/v1/tenants", headers=_auth("smp_nothing")).status_code == 401
    r = c.get("/api/v1/tenants", headers=_auth(tenant_key))
    assert r.status_code == 403 and "partner key" in r.json()["error"]
    assert c.get("/api/v1/tenants", headers=_auth(key_a)).json() == {"tenants": []}
    yesterday = (
        datetime.datetime.now(datetime.UTC).date() - datetime.timedelta(days=1)
    ).isoformat()
    r = c.post(
        "/api/v1/tenants",
        headers=_auth(key_a),
        json={
            "name": "Alpha",
            "domains": ["alpha.example"],
            "plan": "trial",
            "trial_ends_on": yesterday,
        },
    )
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["state"] == "trial-ended" and made["credentials"]["connector_token"]
    assert r.headers["cache-control"] == "no-store"
    ta = made["id"]
    bad = c.post(
        "/api/v1/tenants", headers=_auth(key_a), json={"name": "Alpha", "domains": ["x.example"]}
    )
    assert bad.status_code == 422 and "already exists" in bad.json()["error"]
    assert c.post("/api/v1/tenants", headers=_auth(key_a), content=b"[1]").status_code == 400
    listed = c.get("/api/v1/tenants", headers=_auth(key_a)).json()["tenants"]
    assert [t["id"] for t in listed] == [ta]
    # the other partner's tenant does not exist for this key
    assert c.get(f"/api/v1/tenants/{tb}", headers=_auth(key_a)).status_code == 404
    assert c.post(f"/api/v1/tenants/{tb}/suspend", headers=_auth(key_a)).status_code == 404
    r = c.post(f"/api/v1/tenants/{ta}/plan", headers=_auth(key_a), json={"plan": "paid"})
    assert r.status_code == 200 and r.json()["state"] == "active" and r.json()["plan"] == "paid"
    r = c.post(f"/api/v1/tenants/{ta}/plan", headers=_auth(key_a), json={"plan": "gold"})
    assert r.status_code == 422
    assert (
        c.post(f"/api/v1/tenants/{ta}/suspend", headers=_auth(key_a)).json()["standing"]
        == "suspended"
    )
    assert (
        c.post(f"/api/v1/tenants/{ta}/resume", headers=_auth(key_a)).json()["standing"] == "active"
    )
    assert (
        c.post(f"/api/v1/tenants/{ta}/terminate", headers=_auth(key_a)).json()["standing"]
        == "terminated"
    )
    assert c.post(f"/api/v1/tenants/{ta}/resume", headers=_auth(key_a)).status_code == 409

    async def log() -> list[AuditEvent]:
        async with world.services.db.session() as s:
            return list(
                (await s.execute(select(AuditEvent).where(AuditEvent.tenant_id == ta))).scalars()
            )

    actors = {e.actor for e in world.run(log) if e.action.startswith("tenant.")}
    assert actors == {"partner-key:PSA"}

    async def revoke() -> None:
        async with world.services.db.session() as s:
            from core.accounts.partner_users import list_partner_keys, partner_key_id

            row = (await list_partner_keys(s, pa))[0]
            await revoke_partner_key(s, pa, partner_key_id(row), "cli")
            await s.commit()

    world.run(revoke)
    assert c.get("/api/v1/tenants", headers=_auth(key_a)).status_code == 401

    async def bravo() -> Tenant:
        async with world.services.db.session() as s:
            return (await s.execute(select(Tenant).where(Tenant.id == tb))).scalar_one()

    assert world.run(bravo).standing == "active"
    assert key_b.startswith("smp_")
