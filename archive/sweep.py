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

import logging

from archive.sweep_due import due, unindexed_due
from archive.sweep_report import ACTOR, Problem, Progress, SweepReport
from archive.sweep_shred import expire_portal, shred_batch, shred_unindexed
from core.audit import audit
from core.errors import SealmailError
from core.models import now
from core.services import Services

log = logging.getLogger("sealmail.sweep")
BATCH = 100  # entries whose keys are destroyed in one transaction


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
    entries, portal, held, portal_held = await due(services, tenant_id, at)
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
            await shred_batch(services, batch, at, report)
        except (SealmailError, ValueError):
            # one entry's trouble must not hold up the others: one at a time
            for entry_id in batch:
                try:
                    await shred_batch(services, [entry_id], at, report)
                except (SealmailError, ValueError) as exc:
                    report.problems.append(Problem(entry_id, "", f"{type(exc).__name__}: {exc}"))
        done += len(batch)
        if progress:
            progress(done, total)
    for message_id in portal:
        try:
            await expire_portal(services, message_id, at, report)
        except (SealmailError, ValueError) as exc:
            report.problems.append(Problem(message_id, "", f"{type(exc).__name__}: {exc}"))
        done += 1
        if progress:
            progress(done, total)
    for message_id in await unindexed_due(services, tenant_id, at):
        try:
            await shred_unindexed(services, message_id, at, report)
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
