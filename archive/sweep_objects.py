"""The sweep's crypto-shredding of objects: which sealed objects belong to an archive entry
or a message (the original, the sealed and portal meta and parts, outbound copies, journal
objects), which of them a live entry still names, destroying their keys, and deleting the
ciphertext from the store (an object under Object Lock is left until its date)."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from archive.models import ArchiveEntry, JournalEntry
from core.errors import NotFound, SealmailError
from core.models import Message, OutboxItem, OutboxRecipient, SealedObject, now
from core.portal_message import PortalMessage
from core.services import Services
from core.storage.interface import ObjectLocked

log = logging.getLogger("sealmail.sweep")
FINAL_OUTBOX_STATES = ("sent", "bounced")
LOCK_RETRY = 86400.0


async def portal_objects(services: Services, session: AsyncSession, msg: Message) -> list[str]:
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


async def outbound_objects(
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


async def live_references(session: AsyncSession, names: set[str], excluding: set[str]) -> set[str]:
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


async def entry_objects(services: Services, session: AsyncSession, entry: ArchiveEntry) -> set[str]:
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
            names.update(await portal_objects(services, session, msg))
            names.update(await outbound_objects(session, msg.id, finished_only=False))
            journal = await session.execute(
                select(JournalEntry.object_id, JournalEntry.meta_object_id).where(
                    JournalEntry.message_id == msg.id
                )
            )
            for obj, meta in journal:
                names.update(x for x in (obj, meta) if x)
    return names


async def destroy_keys(session: AsyncSession, names: set[str]) -> int:
    if not names:
        return 0
    result = await session.execute(
        update(SealedObject)
        .where(SealedObject.id.in_(sorted(names)), SealedObject.destroyed_at.is_(None))
        .values(wrapped_key=None, destroyed_at=now())
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def delete_objects(
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
