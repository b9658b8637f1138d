"""A tenant's sign-in and protection settings (:class:`TenantProtection`), read with their
defaults when the tenant never saved any, and saved by ``/admin/settings``."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from conversations.models import TenantProtection
from core.models import now

STEP_UP_MODES = ("off", "detectors", "rules", "always")
MAX_REMEMBER_DAYS = 90


def defaults(tenant_id: str) -> TenantProtection:
    return TenantProtection(
        tenant_id=tenant_id,
        step_up="off",
        step_up_detectors="",
        step_up_rules="",
        code_fallback=True,
        remember_days=30,
        pdf_when_no_key=False,
        updated_at=0.0,
    )


async def settings_of(session: AsyncSession, tenant_id: str) -> TenantProtection:
    """The tenant's row, or an unsaved one holding the defaults (never added to the session)."""
    row = await session.get(TenantProtection, tenant_id)
    return row if row is not None else defaults(tenant_id)


async def editable(session: AsyncSession, tenant_id: str) -> TenantProtection:
    """The tenant's row to change (added to the session when new); the caller commits."""
    row = await session.get(TenantProtection, tenant_id)
    if row is None:
        row = defaults(tenant_id)
        session.add(row)
    row.updated_at = now()
    return row


def names(text: str) -> list[str]:
    """A comma-separated column as its names."""
    return [n for n in (p.strip() for p in text.split(",")) if n]
