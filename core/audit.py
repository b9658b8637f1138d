"""The audit log: who did what to which subject, with details as sorted JSON."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.models import AuditEvent


async def audit(
    session: AsyncSession,
    tenant_id: str | None,
    actor: str,
    action: str,
    subject_id: str = "",
    **detail: Any,
) -> None:
    session.add(
        AuditEvent(
            tenant_id=tenant_id,
            actor=actor,
            action=action,
            subject_id=subject_id,
            detail=json.dumps(detail, sort_keys=True, default=str),
        )
    )
