"""The pipeline's hook into the archive index (:mod:`archive.index`).

Every message the pipeline processes gets one ``gateway`` entry the first time it is
decided (a later pass for released or rerouted recipients adds none); an Exchange journal
report gets a ``journal`` entry for the original it carries instead, with the report's own
recipient list (Bcc and expanded recipients included), and a duplicate report none. Both are
added to the pass's session, so the entry commits with the rest of the pass or not at all.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from email.message import EmailMessage

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from archive import index
from archive.models import ArchiveEntry, JournalEntry
from core.errors import NotFound
from core.hashing import sha256_hex
from core.mime_text import parse_message
from core.models import Message
from core.services import Services
from gateway.pipeline.journal import DISPOSITION_JOURNAL, MalformedReport, parse_report


async def record_accepted(
    services: Services,
    session: AsyncSession,
    message: Message,
    raw: bytes,
    msg: EmailMessage,
    decisions: Iterable[str],
    envelope_rcpts: Iterable[str],
    summary: index.Summary | None = None,
) -> ArchiveEntry | None:
    """The archive entry of an accepted message; ``summary`` when it was made while the
    message was streamed (a large message: ``raw`` is then only its header block)."""
    decisions = set(decisions)
    if DISPOSITION_JOURNAL in decisions:
        return None  # archived as a journal entry by archive_journal
    # the entry commits with the pass that first records the message as processed: a
    # message never processed has none yet, and needs no look
    if message.processed_at is not None:
        existing = (
            await session.execute(
                select(ArchiveEntry.id).where(
                    ArchiveEntry.message_id == message.id,
                    ArchiveEntry.source == index.SOURCE_GATEWAY,
                )
            )
        ).first()
        if existing is not None:
            return None
    if summary is None:
        summary = await asyncio.to_thread(
            index.summarise, msg, len(raw), sha256_hex(raw), message.mail_from, envelope_rcpts
        )
    return await index.record(
        services,
        session,
        tenant_id=message.tenant_id,
        source=index.SOURCE_GATEWAY,
        message_id=message.id,
        object_id=message.raw_object_id,
        summary=summary,
        decisions=decisions,
        received_at=message.received_at,
    )


def _journal_rcpts(meta: dict) -> list[str]:
    """The recipients a journal entry's meta lists, groups they were expanded from too."""
    rcpts: list[str] = []
    for r in meta.get("recipients", ()):
        rcpts.append(r["address"])
        if r.get("expanded"):
            rcpts.append(r["expanded"])
    return rcpts


def _journal_summary(raw: bytes, envelope_from: str) -> index.Summary:
    try:
        report = parse_report(raw)
    except (MalformedReport, Exception):  # noqa: BLE001 - archived whole, as journal.py does
        msg = parse_message(raw)
        return index.summarise(msg, len(raw), sha256_hex(raw), envelope_from)
    original = report.original
    msg = parse_message(original)
    rcpts: list[str] = []
    for r in report.recipients:
        rcpts.append(r.address)
        if r.expanded:
            rcpts.append(r.expanded)
    summary = index.summarise(msg, len(original), sha256_hex(original), report.sender, rcpts)
    if not summary.subject:
        summary.subject = report.subject
    return summary


async def record_journal(
    services: Services,
    session: AsyncSession,
    message: Message,
    raw: bytes,
    entry: JournalEntry,
    summary: index.Summary | None = None,
) -> ArchiveEntry | None:
    """The archive entry of a journal report just archived; none for a duplicate.
    ``summary``: made already (a large report's, on the stream), else made from ``raw``."""
    if entry.message_id != message.id or await index.entry_for(
        session, index.SOURCE_JOURNAL, entry.object_id
    ):
        return None
    if summary is None:
        summary = await asyncio.to_thread(_journal_summary, raw, message.mail_from)
    return await index.record(
        services,
        session,
        tenant_id=message.tenant_id,
        source=index.SOURCE_JOURNAL,
        message_id=message.id,
        object_id=entry.object_id,
        summary=summary,
        decisions=[DISPOSITION_JOURNAL],
        received_at=message.received_at,
    )


# --- backfill ---------------------------------------------------------------------------


async def _summarise_object(
    services: Services, tenant_id: str, object_id: str, envelope_from: str, rcpts: list[str]
) -> index.Summary:
    """Stream a sealed original once: digest, size, headers and attachment names."""
    summariser = index.StreamSummary()
    async with services.db.session() as s:
        async for chunk in await services.vault.stream(s, tenant_id, object_id):
            summariser.feed(chunk)
    return summariser.summary(envelope_from, rcpts)


async def missing(services: Services, tenant_id: str | None = None) -> tuple[list[str], list[str]]:
    """Ids of processed messages and of journal entries that have no archive entry."""
    indexed = select(ArchiveEntry.message_id).where(ArchiveEntry.message_id.is_not(None))
    journaled = select(ArchiveEntry.object_id).where(ArchiveEntry.source == index.SOURCE_JOURNAL)
    m = select(Message.id).where(
        Message.state == "processed",
        Message.disposition != DISPOSITION_JOURNAL,
        Message.id.not_in(indexed),
    )
    j = select(JournalEntry.id).where(JournalEntry.object_id.not_in(journaled))
    if tenant_id:
        m = m.where(Message.tenant_id == tenant_id)
        j = j.where(JournalEntry.tenant_id == tenant_id)
    async with services.db.session() as s:
        messages = list((await s.execute(m.order_by(Message.received_at))).scalars().all())
        journals = list((await s.execute(j.order_by(JournalEntry.received_at))).scalars().all())
    return messages, journals


async def reindex(
    services: Services,
    tenant_id: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Archive entries for messages processed before the index existed (and journal
    entries without one, from the archived original and the report's fields kept in its
    meta); each original is streamed, so any size is fine. Idempotent."""
    from core.models import MessageRecipient

    messages, journals = await missing(services, tenant_id)
    total, done = len(messages) + len(journals), 0
    for mid in messages:
        async with services.db.session() as s:
            message = await s.get(Message, mid)
            if message is None:
                continue
            rows = (
                await s.execute(
                    select(MessageRecipient.rcpt, MessageRecipient.disposition).where(
                        MessageRecipient.message_id == mid
                    )
                )
            ).all()
        try:
            summary = await _summarise_object(
                services, message.tenant_id, message.raw_object_id, message.mail_from,
                [r for r, _ in rows],
            )  # fmt: skip
        except NotFound:  # its original was already shredded: nothing left to index
            continue
        async with services.db.session() as s:
            await index.record(
                services, s, tenant_id=message.tenant_id, source=index.SOURCE_GATEWAY,
                message_id=mid, object_id=message.raw_object_id, summary=summary,
                decisions=[d for _, d in rows], received_at=message.received_at,
            )  # fmt: skip
            await s.commit()
        done += 1
        if progress:
            progress(done, total)
    for jid in journals:
        async with services.db.session() as s:
            entry = await s.get(JournalEntry, jid)
            message = await s.get(Message, entry.message_id) if entry else None
            if entry is None or message is None:
                continue
            try:  # the report's fields, as archived with it
                meta = json.loads(
                    await services.vault.read(s, entry.tenant_id, entry.meta_object_id)
                )
            except NotFound:
                continue
        try:  # the archived object (the report's original, or a malformed report whole)
            summary = await _summarise_object(
                services, entry.tenant_id, entry.object_id,
                meta.get("sender", message.mail_from), _journal_rcpts(meta),
            )  # fmt: skip
        except NotFound:
            continue
        summary.subject = summary.subject or meta.get("subject", "")
        async with services.db.session() as s:
            await index.record(
                services, s, tenant_id=entry.tenant_id, source=index.SOURCE_JOURNAL,
                message_id=message.id, object_id=entry.object_id, summary=summary,
                decisions=[DISPOSITION_JOURNAL], received_at=entry.received_at,
            )  # fmt: skip
            await s.commit()
        done += 1
        if progress:
            progress(done, total)
    return done
