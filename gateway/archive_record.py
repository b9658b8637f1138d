"""The pipeline's hook into the archive index (:mod:`archive.index`).

Every message the pipeline processes gets one ``gateway`` entry the first time it is
decided (a later pass for released or rerouted recipients adds none); an Exchange journal
report gets a ``journal`` entry for the original it carries instead, with the report's own
recipient list (Bcc and expanded recipients included), and a duplicate report none. Both are
added to the pass's session, so the entry commits with the rest of the pass or not at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from archive import index
from archive.services import Services
from core.keys import sha256_hex
from core.models import ArchiveEntry, JournalEntry, Message
from gateway.journal import DISPOSITION_JOURNAL, MalformedReport, parse_report


async def record_accepted(
    services: Services,
    session: AsyncSession,
    message: Message,
    raw: bytes,
    msg: EmailMessage,
    decisions: Iterable[str],
    envelope_rcpts: Iterable[str],
) -> ArchiveEntry | None:
    decisions = set(decisions)
    if DISPOSITION_JOURNAL in decisions:
        return None  # archived as a journal entry by archive_journal
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


def _journal_summary(raw: bytes, envelope_from: str) -> index.Summary:
    try:
        report = parse_report(raw)
    except (MalformedReport, Exception):  # noqa: BLE001 - archived whole, as journal.py does
        msg = BytesParser(policy=default_policy).parsebytes(raw)
        return index.summarise(msg, len(raw), sha256_hex(raw), envelope_from)
    original = report.original
    msg = BytesParser(policy=default_policy).parsebytes(original)
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
    services: Services, session: AsyncSession, message: Message, raw: bytes, entry: JournalEntry
) -> ArchiveEntry | None:
    """The archive entry of a journal report just archived; none for a duplicate."""
    if entry.message_id != message.id or await index.entry_for(
        session, index.SOURCE_JOURNAL, entry.object_id
    ):
        return None
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
