"""Searching a tenant's archive through the blind index (:mod:`archive.index`).

A query becomes a set of tokens (all must match) plus a date range on the clear
``received_at`` column; results are ordered ``received_at`` descending, then id, and paged.
Only the page's rows have their sealed meta opened. Always scoped to one tenant: the
entries are filtered by tenant id, and the tokens are keyed per tenant besides.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import hashlib
import hmac
import json
import logging
from typing import Any

from sqlalchemy import Select, exists, func, intersect, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from archive import index
from archive.models import ArchiveEntry, ArchiveTerm
from core import sealed
from core.audit import audit
from core.errors import IntegrityError, NotFound, SealmailError
from core.models import SealedObject
from core.services import Services

log = logging.getLogger("sealmail.archive")

MAX_LIMIT = 500
COUNT_CAP = 1_000  # results counted exactly up to here; beyond: "more than"
SIZE_CAP = 5_000  # posting lists counted up to here to choose the one that drives a query
DEFAULT_LIMIT = 50
DECISIONS = ("clear", "tls", "portal", "pgp", "smime", "pdf", "hold", "reject", "journal")


class QueryError(ValueError):
    """A search parameter that does not make sense (one line, for the user)."""


def parse_date(value: str, end: bool = False) -> float:
    """``YYYY-MM-DD`` (a whole UTC day: its start, or with ``end`` its end) or an ISO 8601
    date-time (UTC unless it says otherwise) → epoch seconds."""
    value = value.strip()
    try:
        if len(value) == 10:
            day = datetime.date.fromisoformat(value)
            at = datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.UTC)
            if end:
                at += datetime.timedelta(days=1)
            return at.timestamp()
        at = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise QueryError(f"not a date: {value!r} (use YYYY-MM-DD or an ISO 8601 time)") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=datetime.UTC)
    return at.timestamp()


@dataclasses.dataclass(frozen=True)
class Query:
    sender: str = ""  # an address, or a domain (with or without "@")
    recipient: str = ""
    after: float | None = None  # received_at >= after
    before: float | None = None  # received_at < before
    subject: str = ""  # words, all must match
    has_attachment: bool = False
    decision: str = ""

    def __post_init__(self) -> None:
        if self.decision and self.decision not in (*DECISIONS, "mixed"):
            raise QueryError(f"unknown decision {self.decision!r}: one of {', '.join(DECISIONS)}")
        if self.subject.strip() and not index.words(self.subject):
            raise QueryError("the subject words are all too short or too common to search")
        if self.after is not None and self.before is not None and self.after >= self.before:
            raise QueryError("the date range is empty (after must be before 'before')")

    @classmethod
    def from_params(cls, params: Any) -> Query:
        """From form or query parameters (``from``, ``to``, ``after``, ``before``,
        ``subject``, ``has_attachment``, ``decision``)."""
        after = (params.get("after") or "").strip()
        before = (params.get("before") or "").strip()
        flag = (params.get("has_attachment") or "").strip().lower()
        if flag not in ("", "0", "1", "true", "false", "yes", "no", "on", "off"):
            raise QueryError("has_attachment must be true or false")
        return cls(
            sender=(params.get("from") or "").strip()[:320],
            recipient=(params.get("to") or "").strip()[:320],
            after=parse_date(after) if after else None,
            before=parse_date(before, end=True) if before else None,
            subject=(params.get("subject") or "")[:500],
            has_attachment=flag in ("1", "true", "yes", "on"),
            decision=(params.get("decision") or "").strip().lower(),
        )

    def terms(self) -> list[tuple[str, str]]:
        t: list[tuple[str, str]] = []
        for value, addr_field, domain_field in (
            (self.sender, index.F_FROM, index.F_FROM_DOMAIN),
            (self.recipient, index.F_TO, index.F_TO_DOMAIN),
        ):
            v = index.normalise_address(value)
            if not v:
                continue
            if v.startswith("@") or "@" not in v:
                t.append((domain_field, v.lstrip("@")))
            else:
                t.append((addr_field, v))
        t.extend((index.F_SUBJECT, w) for w in index.words(self.subject))
        return t

    def criteria(self) -> int:
        """How many criteria are set (what the audit log records instead of the query)."""
        n = len(self.terms())
        n += (self.after is not None) + (self.before is not None)
        n += bool(self.decision) + self.has_attachment
        return n

    def fingerprint(self, key: bytes) -> str:
        """A keyed hash of the query (equal queries of one tenant give equal hashes)."""
        body = json.dumps(
            [sorted(self.terms()), self.after, self.before, self.decision, self.has_attachment],
            default=str,
        )
        return hmac.new(key, b"query:" + body.encode(), hashlib.sha256).hexdigest()[:32]


@dataclasses.dataclass
class Hit:
    entry: ArchiveEntry
    meta: index.Summary | None  # None when the meta cannot be opened (shredded, damaged)

    def as_json(self) -> dict[str, Any]:
        e, m = self.entry, self.meta
        out: dict[str, Any] = {
            "id": e.id,
            "source": e.source,
            "message_id": e.message_id,
            "received_at": e.received_at,
            "size": e.size,
            "has_attachment": e.has_attachment,
            "decision": e.decision,
            "retain_until": e.retain_until,
            "legal_hold": e.legal_hold,
        }
        # a summary that could not be opened (damaged, storage down): said, not hidden
        out["summary_available"] = m is not None
        if m is not None:
            out.update(
                {
                    "from": m.sender,
                    "to": m.to,
                    "cc": m.cc,
                    "bcc": m.bcc,
                    "subject": m.subject,
                    "date": m.date,
                    "attachments": m.attachments,
                    "sha256": m.sha256,
                }
            )
        return out


@dataclasses.dataclass
class Page:
    hits: list[Hit]
    total: int  # at most COUNT_CAP
    page: int
    limit: int
    exact: bool = True  # False: more than COUNT_CAP matched
    has_next: bool = False  # a further page has results

    @property
    def pages(self) -> int:
        """Pages known to exist (with an inexact total: at least up to the next one)."""
        counted = max(1, -(-self.total // self.limit))
        if self.exact:
            return counted
        return max(counted, self.page + 1 if self.has_next else self.page)

    def as_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "total_exact": self.exact,
            "has_next": self.has_next,
            "page": self.page,
            "limit": self.limit,
            "pages": self.pages,
            "items": [h.as_json() for h in self.hits],
        }


def tokens(services: Services, tenant_id: str, query: Query) -> list[str]:
    """The blind-index tokens an entry must all hold to match ``query``."""
    key = index.index_key(services.root_key, tenant_id)
    terms = set(query.terms())
    if query.decision and query.decision != "mixed":
        terms.add((index.F_DECISION, query.decision))
    if query.has_attachment:
        terms.add((index.F_HAS, "attachment"))
    return sorted({index.token(key, f, v) for f, v in terms})


def statement(services: Services, tenant_id: str, query: Query) -> Select[Any]:
    """The entries of ``tenant_id`` matching ``query`` (unordered, not shredded), as one
    statement: the date range on the entries, the tokens as an intersection of posting
    lists. :func:`search` uses :func:`planned`, which is faster for a page."""
    stmt = select(ArchiveEntry).where(
        ArchiveEntry.tenant_id == tenant_id, ArchiveEntry.shredded_at.is_(None)
    )
    if query.after is not None:
        stmt = stmt.where(ArchiveEntry.received_at >= query.after)
    if query.before is not None:
        stmt = stmt.where(ArchiveEntry.received_at < query.before)
    if query.decision == "mixed":
        stmt = stmt.where(ArchiveEntry.decision == "mixed")
    wanted = tokens(services, tenant_id, query)
    if wanted:
        postings = [
            select(ArchiveTerm.entry_id).where(
                ArchiveTerm.tenant_id == tenant_id, ArchiveTerm.token == t
            )
            for t in wanted
        ]
        matching = postings[0] if len(postings) == 1 else intersect(*postings)
        stmt = stmt.where(ArchiveEntry.id.in_(matching))
    return stmt


def _in_range(column: Any, query: Query) -> list[Any]:
    out = []
    if query.after is not None:
        out.append(column >= query.after)
    if query.before is not None:
        out.append(column < query.before)
    return out


async def planned(
    services: Services, session: AsyncSession, tenant_id: str, query: Query
) -> tuple[Select[Any], Select[Any]] | None:
    """``(page statement, id statement)`` for ``query``, or None when nothing can match.

    With tokens, the query is driven by the token with the shortest posting list (each
    counted up to the cap through the covering index): its postings are read in time
    order from ``ix_archive_terms_lookup`` (tenant, token, received_at, entry) and each
    candidate is checked for the other tokens by primary key, so a page costs about
    ``limit`` lookups rather than a sort of every match."""
    wanted = tokens(services, tenant_id, query)
    if not wanted:
        stmt = ordered(statement(services, tenant_id, query))
        return stmt, stmt.with_only_columns(ArchiveEntry.id)
    sizes: dict[str, int] = {}
    for t in wanted:
        postings = (
            select(ArchiveTerm.entry_id)
            .where(ArchiveTerm.tenant_id == tenant_id, ArchiveTerm.token == t)
            .where(*_in_range(ArchiveTerm.received_at, query))
            .limit(SIZE_CAP)
            .subquery()
        )
        sizes[t] = (await session.execute(select(func.count()).select_from(postings))).scalar_one()
        if sizes[t] == 0:
            return None
    driver = min(wanted, key=lambda t: (sizes[t], t))
    lead = aliased(ArchiveTerm)
    stmt = (
        select(ArchiveEntry)
        .join(lead, lead.entry_id == ArchiveEntry.id)
        .where(lead.tenant_id == tenant_id, lead.token == driver)
        .where(*_in_range(lead.received_at, query))
        .where(ArchiveEntry.tenant_id == tenant_id, ArchiveEntry.shredded_at.is_(None))
    )
    if query.decision == "mixed":
        stmt = stmt.where(ArchiveEntry.decision == "mixed")
    for t in wanted:
        if t != driver:
            other = aliased(ArchiveTerm)
            stmt = stmt.where(exists().where(other.entry_id == lead.entry_id, other.token == t))
    stmt = stmt.order_by(lead.received_at.desc(), lead.entry_id.desc())
    return stmt, stmt.with_only_columns(lead.entry_id)


def ordered(stmt: Select[Any]) -> Select[Any]:
    return stmt.order_by(ArchiveEntry.received_at.desc(), ArchiveEntry.id.desc())


async def open_meta(
    services: Services, session: AsyncSession, entry: ArchiveEntry
) -> index.Summary | None:
    if not entry.meta_object_id:
        return None
    try:
        data = await services.vault.read(session, entry.tenant_id, entry.meta_object_id)
        return index.Summary.from_json(data)
    except (NotFound, ValueError, KeyError, TypeError):
        return None


async def open_metas(
    services: Services, session: AsyncSession, tenant_id: str, entries: list[ArchiveEntry]
) -> list[index.Summary | None]:
    """The sealed summaries of a page of entries: one query for their key rows, one thread
    hop to read and decrypt them all (a summary that cannot be opened is ``None``)."""
    ids = [e.meta_object_id for e in entries if e.meta_object_id]
    rows = {
        r.id: r
        for r in (
            await session.execute(
                select(SealedObject).where(
                    SealedObject.id.in_(ids), SealedObject.tenant_id == tenant_id
                )
            )
        )
        .scalars()
        .all()
    }
    jobs: list[tuple[str, str, bytes] | None] = []
    for e in entries:
        row = rows.get(e.meta_object_id or "")
        if row is None or row.wrapped_key is None or row.destroyed_at is not None:
            jobs.append(None)
            continue
        try:
            key = await services.keyring.data_key(
                session, tenant_id, row.id, row.wrapped_key, row.kek_version
            )
        except (NotFound, IntegrityError) as exc:
            log.warning("archive summary %s: key does not open: %s", row.id, exc)
            jobs.append(None)
            continue
        jobs.append((row.id, row.storage_name, key))

    def work() -> list[index.Summary | None]:
        out: list[index.Summary | None] = []
        for job in jobs:
            if job is None:
                out.append(None)
                continue
            object_id, name, key = job
            try:
                with services.store.open(name) as fh:
                    data = b"".join(sealed.open_stream(key, tenant_id, object_id, fh))
                out.append(index.Summary.from_json(data))
            except (SealmailError, OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("archive summary %s not opened: %s", object_id, type(exc).__name__)
                out.append(None)
        return out

    return await asyncio.to_thread(work)


async def search(
    services: Services,
    session: AsyncSession,
    tenant_id: str,
    query: Query,
    page: int = 1,
    limit: int = DEFAULT_LIMIT,
) -> Page:
    if page < 1:
        raise QueryError("page must be 1 or more")
    if not 1 <= limit <= MAX_LIMIT:
        raise QueryError(f"limit must be between 1 and {MAX_LIMIT}")
    plan = await planned(services, session, tenant_id, query)
    if plan is None:
        return Page([], 0, page, limit)
    stmt, ids = plan
    # counted up to COUNT_CAP + 1 rows: a broad query is "more than 1,000", not a full scan
    capped = ids.order_by(None).limit(COUNT_CAP + 1).subquery()
    total = (await session.execute(select(func.count()).select_from(capped))).scalar_one()
    found = (
        (await session.execute(stmt.offset((page - 1) * limit).limit(limit + 1))).scalars().all()
    )
    rows, has_next = found[:limit], len(found) > limit
    metas = await open_metas(services, session, tenant_id, list(rows))
    hits = [Hit(e, m) for e, m in zip(rows, metas, strict=True)]
    exact = total <= COUNT_CAP
    return Page(hits, min(int(total), COUNT_CAP), page, limit, exact=exact, has_next=has_next)


async def audit_search(
    services: Services,
    session: AsyncSession,
    tenant_id: str,
    actor: str,
    query: Query,
    action: str,
    count: int,
    **extra: Any,
) -> None:
    """Record a search or export in the audit log: who, tenant, how many criteria and
    results, a keyed hash of the query; never the query's words or addresses."""
    key = index.index_key(services.root_key, tenant_id)
    detail = {
        "criteria": query.criteria(),
        "query_hash": query.fingerprint(key),
        "results": count,
        **extra,
    }
    await audit(session, tenant_id, actor, action, **detail)
