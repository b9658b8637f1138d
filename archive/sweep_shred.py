"""The sweep's three kinds of shredding, each on what :mod:`archive.sweep_due` found due:
a batch of archive entries past retention, a portal copy past portal retention, and a
message no archive entry stands for. Each destroys the keys first (and commits), then
deletes the objects, then records the outcome, so a step cut short is simply run again."""

from __future__ import annotations

from sqlalchemy import select, update

from archive import holds, retention
from archive.models import ArchiveEntry
from archive.sweep_objects import (
    delete_objects,
    destroy_keys,
    entry_objects,
    live_references,
    outbound_objects,
    portal_objects,
)
from archive.sweep_report import ACTOR, Problem, SweepReport
from core.audit import audit
from core.models import Message, Tenant, now
from core.services import Services


async def shred_batch(
    services: Services, entry_ids: list[str], at: float, report: SweepReport
) -> None:
    """Shred a batch of due entries: one transaction destroys the keys of all of them (and
    commits), then their objects are deleted, then one transaction records the outcome."""
    db = services.db
    plans: dict[str, tuple[str, set[str]]] = {}  # entry id -> (tenant id, its objects)
    async with db.session() as s:
        on_hold = await holds.tenants_on_hold(s)
        rows = (
            (await s.execute(select(ArchiveEntry).where(ArchiveEntry.id.in_(entry_ids))))
            .scalars()
            .all()
        )
        due = [e for e in rows if e.shredded_at is None and e.retain_until <= at]
        listed = await holds.listed_entries(s, [e.id for e in due])
        chosen = []
        for entry in due:
            if entry.legal_hold or entry.tenant_id in on_hold or entry.id in listed:
                report.entries_held += 1
            else:
                chosen.append(entry)
        if not chosen:
            return
        # lock the rows (PostgreSQL) so a hold placed now waits for this decision
        await s.execute(
            update(ArchiveEntry)
            .where(ArchiveEntry.id.in_([e.id for e in chosen]), ArchiveEntry.legal_hold.is_(False))
            .values(retain_until=ArchiveEntry.retain_until)
            .execution_options(synchronize_session=False)
        )
        for entry in chosen:
            plans[entry.id] = (entry.tenant_id, await entry_objects(services, s, entry))
        every = set().union(*(names for _t, names in plans.values()))
        live = await live_references(s, every, set(plans))
        for _t, names in plans.values():
            names -= live
        destroyed = await destroy_keys(s, every - live)
        messages = [e.message_id for e in chosen if e.message_id]
        if messages:
            await s.execute(
                update(Message)
                .where(Message.id.in_(messages), Message.portal_expired_at.is_(None))
                .values(portal_expired_at=at)
                .execution_options(synchronize_session=False)
            )
        for entry in chosen:
            await audit(
                s, entry.tenant_id, ACTOR, "archive.shred.keys", entry.id,
                objects=len(plans[entry.id][1]), retain_until=entry.retain_until,
            )  # fmt: skip
        await s.commit()
    report.keys_destroyed += destroyed
    outcomes: dict[str, tuple[list[float], list[str]]] = {}
    async with db.session() as s:
        for entry_id, (_tenant, names) in plans.items():
            deleted, locked, failures = await delete_objects(services, s, names, at)
            report.objects_deleted += deleted
            report.objects_locked += len(locked)
            outcomes[entry_id] = (locked, failures)
    async with db.session() as s:
        done = []
        for entry_id, (locked, failures) in outcomes.items():
            tenant_id, names = plans[entry_id]
            if failures:  # tried again by the next sweep
                for f in failures:
                    report.problems.append(Problem(entry_id, tenant_id, f"delete failed: {f}"))
                await audit(
                    s, tenant_id, ACTOR, "archive.shred.retry", entry_id, failures=len(failures)
                )
            elif locked:
                # the keys are gone; what is left is deleted once the last lock runs out,
                # so the entry comes due again then (not every hour until then)
                until = max(locked)
                await s.execute(
                    update(ArchiveEntry)
                    .where(ArchiveEntry.id == entry_id, ArchiveEntry.retain_until < until)
                    .values(retain_until=until)
                    .execution_options(synchronize_session=False)
                )
                await audit(
                    s, tenant_id, ACTOR, "archive.shred.locked", entry_id,
                    objects=len(locked), locked_until=until,
                )  # fmt: skip
            else:
                done.append(entry_id)
                await audit(s, tenant_id, ACTOR, "archive.shred", entry_id, objects=len(names))
        if done:
            await s.execute(
                update(ArchiveEntry)
                .where(ArchiveEntry.id.in_(done), ArchiveEntry.shredded_at.is_(None))
                .values(shredded_at=now())
                .execution_options(synchronize_session=False)
            )
        await s.commit()
    report.entries_shredded += len(done)


async def expire_portal(
    services: Services, message_id: str, at: float, report: SweepReport
) -> None:
    db = services.db
    async with db.session() as s:
        msg = await s.get(Message, message_id)
        if msg is None or msg.portal_expired_at is not None or not msg.meta_object_id:
            return
        tenant = await s.get(Tenant, msg.tenant_id)
        if retention.portal_expires_at(services.settings, tenant, msg.received_at) > at:
            return
        if msg.tenant_id in await holds.tenants_on_hold(s):
            report.portal_held += 1
            return
        held = await s.execute(
            select(ArchiveEntry.id)
            .where(ArchiveEntry.message_id == msg.id, ArchiveEntry.legal_hold.is_(True))
            .limit(1)
        )
        if held.first() is not None:
            report.portal_held += 1
            return
        names = set(await portal_objects(services, s, msg))
        names.update(await outbound_objects(s, msg.id, finished_only=True))
        names.discard(msg.raw_object_id)
        names -= await live_references(s, names, set())
        destroyed = await destroy_keys(s, names)
        msg.portal_expired_at = at
        await audit(
            s,
            msg.tenant_id,
            ACTOR,
            "portal.expire",
            msg.id,
            objects=len(names),
            keys_destroyed=destroyed,
        )
        await s.commit()
        tenant_id = msg.tenant_id
    report.keys_destroyed += destroyed
    async with db.session() as s:
        deleted, locked, failures = await delete_objects(services, s, names, at)
    report.objects_deleted += deleted
    report.objects_locked += len(locked)  # portal copies are not locked; if so, orphans
    for f in failures:
        report.problems.append(Problem(message_id, tenant_id, f"delete failed: {f}"))
    report.portal_expired += 1


async def shred_unindexed(
    services: Services, message_id: str, at: float, report: SweepReport
) -> None:
    async with services.db.session() as s:
        msg = await s.get(Message, message_id)
        if msg is None:
            return
        if msg.tenant_id in await holds.tenants_on_hold(s):
            return
        names = {msg.raw_object_id, *await portal_objects(services, s, msg)}
        names.update(await outbound_objects(s, msg.id, finished_only=False))
        names -= await live_references(s, names, set())
        destroyed = await destroy_keys(s, names)
        if msg.portal_expired_at is None and msg.meta_object_id:
            msg.portal_expired_at = at
        await audit(s, msg.tenant_id, ACTOR, "message.shred", msg.id, objects=len(names))
        await s.commit()
        tenant_id = msg.tenant_id
    report.keys_destroyed += destroyed
    async with services.db.session() as s:
        deleted, locked, failures = await delete_objects(services, s, names, at)
    report.objects_deleted += deleted
    report.objects_locked += len(locked)  # the key is gone; the object stays as an orphan
    for f in failures:
        report.problems.append(Problem(message_id, tenant_id, f"delete failed: {f}"))
    report.messages_shredded += 1
