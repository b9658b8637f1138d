"""What the retention sweep has to do now: the archive entries past their retention, the
portal copies past portal retention, and the messages no archive entry stands for that
are past their tenant's archive retention (legal holds counted, not chosen)."""

from __future__ import annotations

from sqlalchemy import and_, select

from archive import holds, retention
from archive.models import ArchiveEntry
from core.models import Message, SealedObject, Tenant
from core.services import Services


async def due(
    services: Services, tenant_id: str | None, at: float
) -> tuple[list[str], list[str], int, int]:
    """(entries due, portal messages due, entries held, portal messages held)."""
    async with services.db.session() as s:
        on_hold = await holds.tenants_on_hold(s)
        stmt = select(ArchiveEntry.id, ArchiveEntry.tenant_id, ArchiveEntry.legal_hold).where(
            ArchiveEntry.shredded_at.is_(None), ArchiveEntry.retain_until <= at
        )
        if tenant_id:
            stmt = stmt.where(ArchiveEntry.tenant_id == tenant_id)
        entries, held = [], 0
        for entry_id, tid, flag in await s.execute(stmt.order_by(ArchiveEntry.retain_until)):
            if flag or tid in on_hold:
                held += 1
            else:
                entries.append(entry_id)
        tenants = (await s.execute(select(Tenant))).scalars().all()
        portal, portal_held = [], 0
        for tenant in tenants:
            if tenant_id and tenant.id != tenant_id:
                continue
            cutoff = at - retention.portal_days(services.settings, tenant) * retention.DAY
            rows = await s.execute(
                select(Message.id, Message.tenant_id).where(
                    and_(
                        Message.tenant_id == tenant.id,
                        Message.portal_expired_at.is_(None),
                        Message.meta_object_id.is_not(None),
                        Message.received_at <= cutoff,
                    )
                )
            )
            for message_id, tid in rows:
                if tid in on_hold:
                    portal_held += 1
                else:
                    portal.append(message_id)
    return entries, portal, held, portal_held


async def unindexed_due(services: Services, tenant_id: str | None, at: float) -> list[str]:
    """Messages past their tenant's archive retention that no archive entry stands for (a
    duplicate journal report, mail the pipeline never finished) whose original still has
    its key: shredded like an entry, so nothing outlives its retention unseen."""
    out: list[str] = []
    async with services.db.session() as s:
        on_hold = await holds.tenants_on_hold(s)
        for tenant in (await s.execute(select(Tenant))).scalars().all():
            if (tenant_id and tenant.id != tenant_id) or tenant.id in on_hold:
                continue
            cutoff = at - retention.archive_days(services.settings, tenant) * retention.DAY
            rows = await s.execute(
                select(Message.id)
                .join(SealedObject, SealedObject.id == Message.raw_object_id)
                .where(
                    Message.tenant_id == tenant.id,
                    Message.received_at <= cutoff,
                    Message.state != "received",
                    SealedObject.destroyed_at.is_(None),
                    ~select(ArchiveEntry.id).where(ArchiveEntry.message_id == Message.id).exists(),
                )
            )
            out += list(rows.scalars().all())
    return out
