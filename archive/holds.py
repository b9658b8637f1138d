"""Legal holds: while one is in force, nothing it covers is shredded or deleted.

Three kinds, each with a name, a reason, who placed it and when, released only explicitly:

- ``tenant``: everything of the tenant (archive entries, portal copies, their keys);
- ``search``: the entries matching an archive search *when the hold is placed*,
  materialised into ``legal_hold_items``; the criteria are kept only as a keyed hash
  (:meth:`archive.search.Query.fingerprint`), never the words or addresses;
- ``message``: one archive entry (by entry id or by the message's queue id).

``archive_entries.legal_hold`` is kept true while any hold in force lists the entry, so the
sweep finds what it may shred with one indexed query.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import String, exists, insert, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from archive import search
from archive.index import index_key
from archive.models import ArchiveEntry, LegalHold, LegalHoldItem
from core.audit import audit
from core.errors import NotFound, PermanentError
from core.ids import new_id
from core.models import now
from core.services import Services

KINDS = ("tenant", "search", "message")
MAX_NAME = 200
MAX_REASON = 500


def _check_text(name: str, reason: str) -> tuple[str, str]:
    name, reason = name.strip(), reason.strip()
    if not name or len(name) > MAX_NAME:
        raise PermanentError(f"a hold needs a name of 1 to {MAX_NAME} characters")
    if len(reason) > MAX_REASON:
        raise PermanentError(f"the reason is longer than {MAX_REASON} characters")
    return name, reason


async def _refresh_flags(session: AsyncSession, hold_id: str) -> None:
    """Set ``legal_hold`` on each entry the hold lists to whether a hold in force lists it
    (one statement, whatever the number of entries)."""
    held = exists().where(
        LegalHoldItem.entry_id == ArchiveEntry.id,
        LegalHoldItem.hold_id == LegalHold.id,
        LegalHold.released_at.is_(None),
    )
    listed = select(LegalHoldItem.entry_id).where(LegalHoldItem.hold_id == hold_id)
    await session.execute(
        update(ArchiveEntry)
        .where(ArchiveEntry.id.in_(listed))
        .values(legal_hold=held)
        .execution_options(synchronize_session=False)
    )


async def place(
    services: Services,
    session: AsyncSession,
    tenant_id: str,
    actor: str,
    kind: str,
    name: str,
    reason: str = "",
    *,
    query: search.Query | None = None,
    message: str = "",
) -> LegalHold:
    """Place a hold (the caller commits). ``query`` for ``search``, ``message`` (an entry id
    or a queue id) for ``message``."""
    if kind not in KINDS:
        raise PermanentError(f"unknown hold kind {kind!r}: one of {', '.join(KINDS)}")
    name, reason = _check_text(name, reason)
    hold = LegalHold(
        id=new_id("h_"),
        tenant_id=tenant_id,
        kind=kind,
        name=name,
        reason=reason,
        placed_by=actor,
        placed_at=now(),
        items=0,
    )
    matching = None
    if kind == "search":
        if query is None or not query.criteria():
            raise PermanentError("a search hold needs at least one search criterion")
        hold.criteria_hash = query.fingerprint(index_key(services.root_key, tenant_id))
        matching = search.statement(services, tenant_id, query)
    elif kind == "message":
        message = message.strip()
        if not message:
            raise PermanentError("a message hold needs an archive entry id or a queue id")
        matching = select(ArchiveEntry).where(
            ArchiveEntry.tenant_id == tenant_id,
            ArchiveEntry.shredded_at.is_(None),
            or_(ArchiveEntry.id == message, ArchiveEntry.message_id == message),
        )
        if (await session.execute(matching.limit(1))).first() is None:
            raise NotFound(f"no archived message {message} in this tenant")
    session.add(hold)
    await session.flush()
    if matching is not None:
        # materialised in the database: INSERT ... SELECT, however many entries match
        rows = matching.with_only_columns(
            literal(hold.id, String(32)).label("hold_id"),
            ArchiveEntry.id.label("entry_id"),
            ArchiveEntry.tenant_id,
        )
        result = await session.execute(
            insert(LegalHoldItem).from_select(["hold_id", "entry_id", "tenant_id"], rows)
        )
        hold.items = int(result.rowcount or 0)  # type: ignore[attr-defined]
        await _refresh_flags(session, hold.id)
    await audit(
        session,
        tenant_id,
        actor,
        "archive.hold.place",
        hold.id,
        kind=kind,
        items=hold.items,
        criteria_hash=hold.criteria_hash,
    )
    return hold


async def get(session: AsyncSession, tenant_id: str | None, hold_id: str) -> LegalHold:
    hold = await session.get(LegalHold, hold_id) if len(hold_id) <= 32 else None
    if hold is None or (tenant_id is not None and hold.tenant_id != tenant_id):
        raise NotFound(f"no legal hold {hold_id}")
    return hold


async def release(
    session: AsyncSession, tenant_id: str | None, hold_id: str, actor: str
) -> LegalHold:
    """Release a hold (the caller commits); its entries are free again unless another hold
    in force lists them. Releasing twice is an error, so an audit trail has one release."""
    hold = await get(session, tenant_id, hold_id)
    if hold.released_at is not None:
        raise PermanentError(f"legal hold {hold_id} was already released")
    hold.released_at = now()
    hold.released_by = actor
    await session.flush()
    await _refresh_flags(session, hold.id)
    await audit(session, hold.tenant_id, actor, "archive.hold.release", hold.id, kind=hold.kind)
    return hold


async def list_holds(
    session: AsyncSession, tenant_id: str | None = None, include_released: bool = False
) -> Sequence[LegalHold]:
    stmt = select(LegalHold).order_by(LegalHold.placed_at.desc(), LegalHold.id)
    if tenant_id is not None:
        stmt = stmt.where(LegalHold.tenant_id == tenant_id)
    if not include_released:
        stmt = stmt.where(LegalHold.released_at.is_(None))
    return (await session.execute(stmt)).scalars().all()


async def tenants_on_hold(session: AsyncSession) -> set[str]:
    """Tenants with a ``tenant`` hold in force."""
    rows = await session.execute(
        select(LegalHold.tenant_id).where(
            LegalHold.kind == "tenant", LegalHold.released_at.is_(None)
        )
    )
    return set(rows.scalars().all())


async def listed_entries(session: AsyncSession, entry_ids: Sequence[str]) -> set[str]:
    """Those of ``entry_ids`` a hold in force lists (checked again just before their keys
    are destroyed: the ``legal_hold`` flag may be stale)."""
    if not entry_ids:
        return set()
    rows = await session.execute(
        select(LegalHoldItem.entry_id)
        .join(LegalHold, LegalHold.id == LegalHoldItem.hold_id)
        .where(LegalHoldItem.entry_id.in_(list(entry_ids)), LegalHold.released_at.is_(None))
    )
    return set(rows.scalars().all())


def as_json(hold: LegalHold) -> dict[str, object]:
    return {
        "id": hold.id,
        "tenant_id": hold.tenant_id,
        "kind": hold.kind,
        "name": hold.name,
        "reason": hold.reason,
        "items": hold.items,
        "criteria_hash": hold.criteria_hash,
        "placed_by": hold.placed_by,
        "placed_at": hold.placed_at,
        "released_by": hold.released_by,
        "released_at": hold.released_at,
        "active": hold.released_at is None,
    }
