"""A large Exchange journal report unwrapped and archived from the stream (issue 15, flat
memory), as :mod:`gateway.pipeline.journal` does with a small one: the report's envelope
part and the attached original are found in the skeleton's part tree, the envelope part
(text, at most :data:`TEXT_LIMIT`) is read and parsed as before, and the attached original
is decoded from the stored stream straight into its sealed object, its SHA-256, size and
archive summary computed on the way. A report it cannot make sense of is archived whole,
as it came, streamed too.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable, Iterator

from sqlalchemy.ext.asyncio import AsyncSession

from archive import index
from archive.models import JournalEntry
from core.mime_stream import PartInfo, body_chunks
from core.models import Message, Tenant
from core.services import Services
from gateway.pipeline.journal import (
    JournalReport,
    MalformedReport,
    find_duplicate,
    meta_of,
    new_entry,
    report_of,
    report_text,
)
from gateway.pipeline.original import LargeOriginal, decode

TEXT_LIMIT = 4 * 1024 * 1024  # an envelope part larger than this is not a report we read
ENCODINGS = ("", "7bit", "8bit", "binary", "base64", "quoted-printable")


def parse_large_report(original: LargeOriginal) -> tuple[JournalReport, PartInfo]:
    """The report (its ``original`` left empty) and the part holding the attached message;
    raises :class:`MalformedReport` (blocking: the envelope part is read)."""
    root = original.skeleton.root
    if root.headers.get_content_maintype() != "multipart":
        raise MalformedReport(f"not a multipart report ({root.content_type})")
    if not root.multipart:
        raise MalformedReport("multipart report without a boundary")
    text: str | None = None
    attached: PartInfo | None = None
    for part in root.children:
        if part.content_type == "message/rfc822":
            attached = part
            break
        if part.content_type == "text/plain" and text is None:
            if part.body_end - part.header_start > TEXT_LIMIT:
                raise MalformedReport("report part too large")
            raw = b"".join(body_chunks(original.read(), part.header_start, part.body_end))
            text = report_text(raw)
    if attached is None:
        raise MalformedReport("no message/rfc822 part")
    if attached.encoding not in ENCODINGS:
        raise MalformedReport(f"attached message: unknown transfer encoding {attached.encoding!r}")
    return report_of(text, b""), attached


class _Tee:
    """The archived object's SHA-256 and size, and its archive summary, on the way."""

    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.size = 0
        self.summary = index.StreamSummary()

    def over(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.sha.update(chunk)
            self.size += len(chunk)
            self.summary.feed(chunk)
            yield chunk


async def archive_large_report(
    services: Services,
    session: AsyncSession,
    tenant: Tenant,
    message: Message,
    original: LargeOriginal,
) -> tuple[JournalEntry, index.Summary | None]:
    """:func:`gateway.pipeline.journal.archive_report` of a large report, and the archive
    summary of what was archived (``None`` for a duplicate: it has its entry already)."""
    try:
        found = await asyncio.to_thread(parse_large_report, original)
        report: JournalReport | None = found[0]
        problem = ""
    except MalformedReport as exc:
        found, report, problem = None, None, str(exc)
    except Exception as exc:  # noqa: BLE001 - a parser bug must not hold the report back
        found, report, problem = None, None, f"unparseable report ({type(exc).__name__})"
    dedupe, existing = await find_duplicate(services, session, tenant, message, report)
    if existing is not None:
        return existing, None
    read = original.read
    if found is not None:
        part = found[1]

        def stream() -> Iterator[bytes]:
            return decode(body_chunks(read(), part.body_start, part.body_end), part.encoding)
    else:  # malformed: archived whole, as it came

        def stream() -> Iterator[bytes]:
            return read()

    tee = _Tee()
    vault = services.vault
    obj = await vault.seal(session, tenant.id, tee.over(stream()), kind="journal")
    meta = meta_of(report, message, problem, tee.sha.hexdigest(), tee.size)
    meta_obj = await vault.seal(session, tenant.id, meta, kind="meta")
    entry = new_entry(session, tenant, message, dedupe, obj.id, meta_obj.id, report is None)
    if report is None:
        return entry, tee.summary.summary(message.mail_from)
    rcpts: list[str] = []
    for r in report.recipients:
        rcpts.append(r.address)
        if r.expanded:
            rcpts.append(r.expanded)
    summary = tee.summary.summary(report.sender, rcpts)
    if not summary.subject:
        summary.subject = report.subject
    return entry, summary
