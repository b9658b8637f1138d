"""Retention: how long a tenant's archive and portal copies are kept, and when they end.

``archive_retention`` (settings) or the tenant's ``archive_retention_days`` decide how long
an archive entry lives; a policy rule may ask for longer (``retain: 10y``) and the longest
applicable one wins. ``portal_retention`` / ``portal_retention_days`` decide how long the
portal copy of a sealed message (its sealed meta and parts) stays readable; after it the
recipient sees an "expired" page while the archive copy stays until its own date.

Legal holds live in :mod:`archive.holds`; the sweep that applies all this is
:mod:`archive.sweep`.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from archive.models import ArchiveEntry
from core.audit import audit
from core.config.settings import Settings
from core.config.values import parse_retention_days
from core.errors import PermanentError
from core.models import Tenant

DAY = 86400.0


def archive_days(settings: Settings, tenant: Tenant | None) -> int:
    """The tenant's archive retention in days (its own, else the settings')."""
    if tenant is not None and tenant.archive_retention_days:
        return int(tenant.archive_retention_days)
    seconds = float(getattr(settings, "archive_retention", 0.0) or 0.0)
    return max(1, round(seconds / DAY)) if seconds else parse_retention_days("7y")


def portal_days(settings: Settings, tenant: Tenant | None) -> int:
    """The tenant's portal retention in days (its own, else ``portal_retention``)."""
    if tenant is not None and tenant.portal_retention_days:
        return int(tenant.portal_retention_days)
    return max(1, round(settings.portal_retention / DAY))


def retain_until(
    settings: Settings,
    tenant: Tenant | None,
    received_at: float,
    policy_days: int | None = None,
) -> float:
    """When an archive entry received at ``received_at`` may be shredded: the tenant's
    retention, or a policy rule's ``retain`` when that is longer (never shorter)."""
    days = archive_days(settings, tenant)
    if policy_days:
        days = max(days, int(policy_days))
    return received_at + days * DAY


def portal_expires_at(settings: Settings, tenant: Tenant | None, received_at: float) -> float:
    return received_at + portal_days(settings, tenant) * DAY


def describe_days(days: int) -> str:
    """``2557`` → ``"2557 days (about 7.0 years)"``: how the CLI and pages show it."""
    if days >= 365:
        return f"{days} days (about {days / 365.25:.1f} years)"
    return f"{days} days"


def format_time(at: float | None) -> str:
    if at is None:
        return ""
    return datetime.datetime.fromtimestamp(at, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


async def set_tenant_retention(
    session: AsyncSession,
    tenant: Tenant,
    actor: str,
    *,
    archive: str | None = None,
    portal: str | None = None,
) -> dict[str, Any]:
    """Set a tenant's retention from values like ``10y`` / ``30d`` (``""`` = back to the
    settings' default). Applies to entries archived from now on; existing entries keep their
    date (shortening retention never shreds early). Audited; returns what changed."""
    wanted: dict[str, int | None] = {}
    for label, value, column in (
        ("archive retention", archive, "archive_retention_days"),
        ("portal retention", portal, "portal_retention_days"),
    ):
        if value is None:
            continue
        if value.strip() == "":
            wanted[column] = None
            continue
        try:
            wanted[column] = parse_retention_days(value)
        except ValueError as exc:
            raise PermanentError(f"{label} {value!r}: {exc}") from None
    changes: dict[str, Any] = {}
    for column, days in wanted.items():  # only once both values are valid
        if getattr(tenant, column) != days:
            setattr(tenant, column, days)
            changes[column] = days
    if changes:
        await audit(session, tenant.id, actor, "tenant.retention", tenant.id, **changes)
    return changes


async def extend_entry(
    session: AsyncSession, store: object, entry: ArchiveEntry, until: float, audited: bool = True
) -> bool:
    """Lengthen an entry's retention to ``until`` (never shortens) and, where the store
    has Object Lock, the lock of its objects with it. Returns whether it changed."""
    if until <= entry.retain_until:
        return False
    entry.retain_until = until
    extend = getattr(store, "set_retention", None)
    if extend is not None:
        for name in (entry.object_id, entry.meta_object_id):
            if name:
                await asyncio.to_thread(extend, name, until)
    if audited:
        await audit(session, entry.tenant_id, "system", "archive.retention.extend", entry.id)
    return True


async def settle_message(
    session: AsyncSession,
    settings: Settings,
    store: object,
    message_id: str,
    policy_days: Iterable[int | None] = (),
    first_pass: bool = False,
) -> list[ArchiveEntry]:
    """Give the archive entries of ``message_id`` their retention: the tenant's (or the
    settings'), or the longest a matching policy rule asked for (``retain``) when longer.
    A new entry (still pending in ``session``) gets exactly that date; an existing one is
    only ever extended. Where the store has Object Lock the objects' lock is extended to
    the date. Called by the pipeline in the transaction that records the decisions;
    ``first_pass`` (the message was never processed) spares it the look-up."""
    days = max((d for d in policy_days if d), default=None)
    new = [o for o in session.new if isinstance(o, ArchiveEntry)]  # before autoflush
    pending = {o.id for o in new}
    if first_pass:  # nothing of the message was committed yet: its entries are the new ones
        entries: Sequence[ArchiveEntry] = [o for o in new if o.message_id == message_id]
    else:
        entries = (
            (
                await session.execute(
                    select(ArchiveEntry).where(ArchiveEntry.message_id == message_id)
                )
            )
            .scalars()
            .all()
        )
    for entry in entries:
        tenant = await session.get(Tenant, entry.tenant_id)
        until = retain_until(settings, tenant, entry.received_at, days)
        if entry.id in pending and until < entry.retain_until:
            entry.retain_until = until  # a tenant keeping less than the default
        elif entry.id in pending:
            await extend_entry(session, store, entry, until, audited=False)
        else:
            await extend_entry(session, store, entry, until)
    return list(entries)
