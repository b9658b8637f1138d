"""Storage of a tenant's policy, on SQLite and PostgreSQL: versions and the audit trail."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from core.accounts.tenants import create_tenant
from core.models import AuditEvent
from core.policy import PolicyError, parse_policy
from core.policy.models import TenantPolicy
from core.policy.store import get_policy, get_stored, set_policy
from core.services import Services

DOC = "rules:\n  - name: cards\n    when: {detector: credit_card}\n    action: encrypt\n"


async def test_set_get_versions_and_audit(services: Services) -> None:
    async with services.db.session() as s:
        creds = await create_tenant(s, services.keyring, "Acme", ["acme.example"])
        await s.commit()
    tid = creds.tenant_id
    async with services.db.session() as s:
        assert (await get_policy(s, tid)).rules == ()
        assert (await get_stored(s, tid)).version == 0
        assert await set_policy(s, tid, parse_policy(DOC), "cli") == 1
        await s.commit()
    second = parse_policy(DOC.replace("encrypt", "hold"))
    async with services.db.session() as s:
        assert await set_policy(s, tid, second, "api:admin") == 2
        await s.commit()
    async with services.db.session() as s:
        stored = await get_stored(s, tid)
        assert (stored.policy, stored.version, stored.updated_by) == (second, 2, "api:admin")
        events = (
            (await s.execute(select(AuditEvent).where(AuditEvent.action == "policy.set")))
            .scalars()
            .all()
        )
        assert [json.loads(e.detail)["version"] for e in events] == [1, 2]


async def test_a_stored_policy_that_no_longer_validates_raises(services: Services) -> None:
    async with services.db.session() as s:
        creds = await create_tenant(s, services.keyring, "Acme", ["acme.example"])
        s.add(TenantPolicy(tenant_id=creds.tenant_id, document='{"rules": [{"name": 1}]}'))
        await s.commit()
    async with services.db.session() as s:
        with pytest.raises(PolicyError):
            await get_policy(s, creds.tenant_id)
