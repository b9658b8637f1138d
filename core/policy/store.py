"""A tenant's policy in the database (``tenant_policies``): canonical JSON plus a version
that goes up by one on each change; every change is audited."""

from __future__ import annotations

import dataclasses
import hashlib
import json

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import audit
from core.models import now
from core.policy.model import Policy, parse_policy
from core.policy.models import TenantPolicy


@dataclasses.dataclass(frozen=True)
class StoredPolicy:
    policy: Policy
    version: int  # 0: never set (the empty default)
    updated_at: float | None
    updated_by: str


async def get_stored(session: AsyncSession, tenant_id: str) -> StoredPolicy:
    row = await session.get(TenantPolicy, tenant_id)
    if row is None:
        return StoredPolicy(Policy(), 0, None, "")
    # A stored document that no longer validates raises PolicyError: callers fail closed.
    return StoredPolicy(
        parse_policy(row.document, "json"), row.version, row.updated_at, row.updated_by
    )


async def get_policy(session: AsyncSession, tenant_id: str) -> Policy:
    """The tenant's policy; the empty default (no rules, pass) when none was set."""
    return (await get_stored(session, tenant_id)).policy


async def set_policy(session: AsyncSession, tenant_id: str, policy: Policy, actor: str) -> int:
    """Store ``policy`` as the tenant's next version (the caller commits); returns it."""
    document = json.dumps(policy.to_document(), ensure_ascii=False, separators=(",", ":"))
    row = (
        await session.execute(
            select(TenantPolicy).where(TenantPolicy.tenant_id == tenant_id).with_for_update()
        )
    ).scalar_one_or_none()
    if row is None:
        row = TenantPolicy(tenant_id=tenant_id, document=document, version=1)
        session.add(row)
    else:
        row.document = document
        row.version += 1
    row.updated_at = now()
    row.updated_by = actor[:320]
    await audit(
        session,
        tenant_id,
        actor,
        "policy.set",
        tenant_id,
        version=row.version,
        rules=len(policy.rules),
        sha256=hashlib.sha256(document.encode()).hexdigest(),
    )
    await session.flush()
    return row.version
