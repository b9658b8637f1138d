"""A tenant's policy in the database (``tenant_policies``): canonical JSON plus a version
that goes up by one on each change; every change is audited and kept as a row of
``policy_versions`` (who, when, the document), so the history can be read and rolled back."""

from __future__ import annotations

import dataclasses
import hashlib
import json

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import audit
from core.errors import NotFound
from core.models import now
from core.policy.model import Policy, parse_policy
from core.policy.models import PolicyVersion, TenantPolicy


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


async def set_policy(
    session: AsyncSession, tenant_id: str, policy: Policy, actor: str, note: str = ""
) -> int:
    """Store ``policy`` as the tenant's next version (the caller commits); returns it. The
    CLI's import, the API's PUT and the admin page all save through here, so each save is
    one version in the history."""
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
        await _keep_unrecorded(session, row)
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
    session.add(
        PolicyVersion(
            tenant_id=tenant_id,
            version=row.version,
            document=document,
            created_at=row.updated_at,
            created_by=actor[:320],
            note=note[:200],
        )
    )
    await session.flush()
    return row.version


async def _keep_unrecorded(session: AsyncSession, row: TenantPolicy) -> None:
    """A policy saved before the history was kept becomes its first entry when replaced."""
    known = await session.execute(
        select(PolicyVersion.id).where(
            PolicyVersion.tenant_id == row.tenant_id, PolicyVersion.version == row.version
        )
    )
    if known.first() is None:
        session.add(
            PolicyVersion(
                tenant_id=row.tenant_id,
                version=row.version,
                document=row.document,
                created_at=row.updated_at,
                created_by=row.updated_by,
                note="saved before the history was kept",
            )
        )


async def versions(session: AsyncSession, tenant_id: str) -> list[PolicyVersion]:
    """The tenant's saved versions, newest first."""
    stmt = (
        select(PolicyVersion)
        .where(PolicyVersion.tenant_id == tenant_id)
        .order_by(PolicyVersion.version.desc())
    )
    return list((await session.execute(stmt)).scalars())


async def version_of(session: AsyncSession, tenant_id: str, version: int) -> PolicyVersion | None:
    stmt = select(PolicyVersion).where(
        PolicyVersion.tenant_id == tenant_id, PolicyVersion.version == version
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def roll_back(session: AsyncSession, tenant_id: str, version: int, actor: str) -> int:
    """Make an earlier version current again, as a new version (history is never edited)."""
    old = await version_of(session, tenant_id, version)
    if old is None:
        raise NotFound(f"policy version {version} not found")
    new = await set_policy(
        session,
        tenant_id,
        parse_policy(old.document, "json"),
        actor,
        note=f"rolled back to version {version}",
    )
    await audit(session, tenant_id, actor, "policy.roll_back", tenant_id, to=version, version=new)
    return new
