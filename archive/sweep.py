"""The retention sweep: crypto-shredding of what has outlived its retention.

For each archive entry with ``retain_until <= now``, not shredded and under no legal hold
(tenant, search or message), the sweep

1. destroys the data keys of every sealed object of that message (the original, the sealed
   meta, the portal meta and parts, outbound copies, a journal entry's objects) —
   ``sealed_objects.wrapped_key = NULL``, ``destroyed_at`` set — and commits: from here on
   no copy of the ciphertext anywhere (a backup, a copy of the bucket) can be decrypted;
2. deletes the objects from the store; a store failure leaves an unreadable orphan that the
   next sweep deletes again (it never blocks the others);
3. sets ``shredded_at`` once every object is gone.

Portal copies past portal retention are shredded the same way (their sealed meta and
parts, and delivered outbound copies), and ``messages.portal_expired_at`` is set so the
recipient sees an "expired" page; the archive copy stays until its own date. An object
still named by a live archive entry is never touched. Every step is idempotent: a sweep
cut short is simply run again. Object Lock: ``retain_until`` is never earlier than the
lock date the store was given, so the sweep never asks to delete a locked object; where the
store can tell an object's lock date, it is checked as well.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from archive import holds, retention
from archive.models import ArchiveEntry, JournalEntry
from archive.services import Services
from archive.store import ObjectLocked
from core.audit import audit
from core.errors import NotFound, SealmailError
from core.models import Message, OutboxItem, OutboxRecipient, SealedObject, Tenant, now
from core.portal_message import PortalMessage

log = logging.getLogger("sealmail.sweep")
FINAL_OUTBOX_STATES = ("sent", "bounced")
ACTOR = "sweep"
LOCK_RETRY = 86400.0
BATCH = 100  # entries whose keys are destroyed in one transaction


@dataclasses.dataclass
class Problem:
    subject_id: str
    tenant_id: str
    what: str

    def as_json(self) -> dict[str, str]:
        return {"id": self.subject_id, "tenant_id": self.tenant_id, "problem": self.what}


@dataclasses.dataclass
class SweepReport:
    dry_run: bool = False
    entries_due: int = 0
    entries_shredded: int = 0
    entries_held: int = 0
    portal_due: int = 0
    portal_expired: int = 0
    portal_held: int = 0
    keys_destroyed: int = 0
    messages_shredded: int = 0  # messages no archive entry stands for
    objects_deleted: int = 0
    objects_locked: int = 0  # keys destroyed, object kept until its Object Lock date
    problems: list[Problem] = dataclasses.field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["problems"] = [p.as_json() for p in self.problems]
        return out


Progress = Callable[[int, int], None]  # (done, total)


async def _portal_objects(services: Services, session: AsyncSession, msg: Message) -> list[str]:
    """The portal meta and the parts it lists (read before its key is destroyed)."""
    if not msg.meta_object_id:
        return []
    names = [msg.meta_object_id]
    meta = await session.get(SealedObject, msg.meta_object_id)
    if meta is None or meta.destroyed_at is not None:
        return names
    try:
        data = await services.vault.read(session, msg.tenant_id, msg.meta_object_id)
        pm = PortalMessage.from_json(data)
    except (SealmailError, ValueError, KeyError, TypeError) as exc:
        # a damaged meta: its parts cannot be found; `archive verify` reports the damage
        log.warning("portal meta of %s unreadable (%s): parts left", msg.id, type(exc).__name__)
        return names
    names += [x for x in (pm.text_object_id, pm.html_object_id) if x]
    names += [p.object_id for p in pm.attachments]
    return names


async def _outbound_objects(
    session: AsyncSession, message_id: str, finished_only: bool
) -> list[str]:
    items = (
        await session.execute(select(OutboxItem).where(OutboxItem.message_id == message_id))
    ).scalars()
    names = []
    for item in items:
        if finished_only:
            open_rcpts = await session.execute(
                select(OutboxRecipient.id)
                .where(
                    OutboxRecipient.outbox_id == item.id,
                    OutboxRecipient.state.not_in(FINAL_OUTBOX_STATES),
                )
                .limit(1)
            )
            if open_rcpts.first() is not None:
                continue
        names.append(item.object_id)
    return names


async def _live_references(session: AsyncSession, names: set[str], excluding: set[str]) -> set[str]:
    """Objects of ``names`` still named by an archive entry that is not being shredded."""
    if not names:
        return set()
    rows = await session.execute(
        select(ArchiveEntry.object_id, ArchiveEntry.meta_object_id).where(
            ArchiveEntry.shredded_at.is_(None),
            ArchiveEntry.id.not_in(excluding) if excluding else True,
            (ArchiveEntry.object_id.in_(names)) | (ArchiveEntry.meta_object_id.in_(names)),
        )
    )
    live: set[str] = set()
    for obj, meta in rows:
        live.update(x for x in (obj, meta) if x in names)
    return live


async def _destroy_keys(session: AsyncSession, names: set[str]) -> int:
    if not names:
        return 0
    result = await session.execute(
        update(SealedObject)
        .where(SealedObject.id.in_(sorted(names)), SealedObject.destroyed_at.is_(None))
        .values(wrapped_key=None, destroyed_at=now())
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def _delete_objects(
    services: Services, session: AsyncSession, names: set[str], at: float
) -> tuple[int, list[float], list[str]]:
    """Delete the stored ciphertext; returns (deleted, lock dates of the objects still
    locked, failures). An object whose Object Lock date the store reports as later than
    ``at`` is not asked for: it is left (its key is already gone) until that date."""
    rows = await session.execute(
        select(SealedObject.id, SealedObject.storage_name).where(SealedObject.id.in_(sorted(names)))
    )
    store = services.store
    # only a store that writes Object Lock is asked (one HEAD per object on S3)
    locking = getattr(store, "object_lock", "off") != "off"
    lock_date = getattr(store, "retained_until", None) if locking else None
    deleted, locked, failures = 0, [], []
    for object_id, storage_name in rows:
        try:
            if lock_date is not None:
                until = await asyncio.to_thread(lock_date, storage_name)
                if until is not None and until > at:
                    locked.append(until)
                    continue
            await asyncio.to_thread(store.delete, storage_name)
            deleted += 1
        except NotFound:
            deleted += 1  # already gone (an earlier sweep, or never written)
        except ObjectLocked:
            locked.append(at + LOCK_RETRY)  # the store did not say until when
        except (SealmailError, OSError) as exc:
            failures.append(f"{object_id}: {type(exc).__name__}: {exc}")
    return deleted, locked, failures


async def _entry_objects(
    services: Services, session: AsyncSession, entry: ArchiveEntry
) -> set[str]:
    names = {x for x in (entry.object_id, entry.meta_object_id) if x}
    journal = await session.execute(
        select(JournalEntry.object_id, JournalEntry.meta_object_id).where(
            JournalEntry.tenant_id == entry.tenant_id, JournalEntry.object_id == entry.object_id
        )
    )
    for obj, meta in journal:
        names.update(x for x in (obj, meta) if x)
    if entry.message_id:
        msg = await session.get(Message, entry.message_id)
        if msg is not None and msg.tenant_id == entry.tenant_id:
            names.add(msg.raw_object_id)
            names.update(await _portal_objects(services, session, msg))
            names.update(await _outbound_objects(session, msg.id, finished_only=False))
            journal = await session.execute(
                select(JournalEntry.object_id, JournalEntry.meta_object_id).where(
                    JournalEntry.message_id == msg.id
                )
            )
            for obj, meta in journal:
                names.update(x for x in (obj, meta) if x)
    return names


async def _shred_batch(
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
            plans[entry.id] = (entry.tenant_id, await _entry_objects(services, s, entry))
        every = set().union(*(names for _t, names in plans.values()))
        live = await _live_references(s, every, set(plans))
        for _t, names in plans.values():
            names -= live
        destroyed = await _destroy_keys(s, every - live)
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
            deleted, locked, failures = await _delete_objects(services, s, names, at)
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


async def _expire_portal(
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
        names = set(await _portal_objects(services, s, msg))
        names.update(await _outbound_objects(s, msg.id, finished_only=True))
        names.discard(msg.raw_object_id)
        names -= await _live_references(s, names, set())
        destroyed = await _destroy_keys(s, names)
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
        deleted, locked, failures = await _delete_objects(services, s, names, at)
    report.objects_deleted += deleted
    report.objects_locked += len(locked)  # portal copies are not locked; if so, orphans
    for f in failures:
        report.problems.append(Problem(message_id, tenant_id, f"delete failed: {f}"))
    report.portal_expired += 1


async def _unindexed_due(services: Services, tenant_id: str | None, at: float) -> list[str]:
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


async def _shred_unindexed(
    services: Services, message_id: str, at: float, report: SweepReport
) -> None:
    async with services.db.session() as s:
        msg = await s.get(Message, message_id)
        if msg is None:
            return
        if msg.tenant_id in await holds.tenants_on_hold(s):
            return
        names = {msg.raw_object_id, *await _portal_objects(services, s, msg)}
        names.update(await _outbound_objects(s, msg.id, finished_only=False))
        names -= await _live_references(s, names, set())
        destroyed = await _destroy_keys(s, names)
        if msg.portal_expired_at is None and msg.meta_object_id:
            msg.portal_expired_at = at
        await audit(s, msg.tenant_id, ACTOR, "message.shred", msg.id, objects=len(names))
        await s.commit()
        tenant_id = msg.tenant_id
    report.keys_destroyed += destroyed
    async with services.db.session() as s:
        deleted, locked, failures = await _delete_objects(services, s, names, at)
    report.objects_deleted += deleted
    report.objects_locked += len(locked)  # the key is gone; the object stays as an orphan
    for f in failures:
        report.problems.append(Problem(message_id, tenant_id, f"delete failed: {f}"))
    report.messages_shredded += 1


async def _due(
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


async def sweep(
    services: Services,
    tenant_id: str | None = None,
    dry_run: bool = False,
    at: float | None = None,
    progress: Progress | None = None,
) -> SweepReport:
    """Apply retention now (or at ``at``, for tests); see the module docstring."""
    at = now() if at is None else at
    report = SweepReport(dry_run=dry_run)
    entries, portal, held, portal_held = await _due(services, tenant_id, at)
    report.entries_due, report.portal_due = len(entries), len(portal)
    if dry_run:
        report.entries_held, report.portal_held = held, portal_held
        return report
    report.entries_held, report.portal_held = held, portal_held
    total, done = len(entries) + len(portal), 0
    if progress:
        progress(0, total)
    for start in range(0, len(entries), BATCH):
        batch = entries[start : start + BATCH]
        try:
            await _shred_batch(services, batch, at, report)
        except (SealmailError, ValueError):
            # one entry's trouble must not hold up the others: one at a time
            for entry_id in batch:
                try:
                    await _shred_batch(services, [entry_id], at, report)
                except (SealmailError, ValueError) as exc:
                    report.problems.append(Problem(entry_id, "", f"{type(exc).__name__}: {exc}"))
        done += len(batch)
        if progress:
            progress(done, total)
    for message_id in portal:
        try:
            await _expire_portal(services, message_id, at, report)
        except (SealmailError, ValueError) as exc:
            report.problems.append(Problem(message_id, "", f"{type(exc).__name__}: {exc}"))
        done += 1
        if progress:
            progress(done, total)
    for message_id in await _unindexed_due(services, tenant_id, at):
        try:
            await _shred_unindexed(services, message_id, at, report)
        except (SealmailError, ValueError) as exc:
            report.problems.append(Problem(message_id, "", f"{type(exc).__name__}: {exc}"))
    async with services.db.session() as s:
        await audit(
            s,
            tenant_id,
            ACTOR,
            "archive.sweep",
            tenant_id or "",
            shredded=report.entries_shredded,
            portal_expired=report.portal_expired,
            held=report.entries_held + report.portal_held,
            problems=len(report.problems),
        )
        await s.commit()
    log.info(
        "sweep: %d entries shredded, %d portal copies expired, %d held, %d problems",
        report.entries_shredded,
        report.portal_expired,
        report.entries_held,
        len(report.problems),
    )
    return report
