"""Appending to a tenant's evidence log, chaining it, checkpoints, and walking it.

:func:`append` adds an unchained entry in the caller's transaction (no contention with any
other writer: the pass, the delivery or the page that caused it commits it). :func:`chain`
then links the tenant's unchained entries in the order they were written, one writer per
tenant at a time (SQLite's write gate; a transaction-scoped advisory lock on PostgreSQL):
each gets the next ``seq``, the previous entry's hash and its own hash, SHA-256 over the
canonical JSON of its fields and that previous hash. Every :data:`CHECKPOINT_EVERY`
entries (and whenever :func:`chain` is asked to) the head is signed with the tenant's key.
:func:`verify` walks the chain and names the first entry that does not hold.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.evidence import keys
from core.evidence.models import EvidenceCheckpoint, EvidenceEntry, SigningKey
from core.hashing import hmac_sha256
from core.models import now
from core.services import Services

ACCEPTED = "accepted"
DECIDED = "decided"
SEALED = "sealed"
DELIVERED = "delivered"
BOUNCED = "bounced"
EXPIRED = "expired"
DIGEST_PURPOSE = "evidence-digest"
CHECKPOINT_EVERY = 100
BATCH = 200  # entries linked in one transaction (the write gate is held meanwhile)
_FIELDS = (
    EvidenceEntry.id,
    EvidenceEntry.tenant_id,
    EvidenceEntry.at,
    EvidenceEntry.kind,
    EvidenceEntry.message_id,
    EvidenceEntry.recipient,
    EvidenceEntry.detail,
)


def append(
    session: AsyncSession,
    tenant_id: str,
    kind: str,
    message_id: str = "",
    recipient: str = "",
    at: float | None = None,
    **detail: Any,
) -> EvidenceEntry:
    """Add one unchained entry to ``session`` (the caller commits it with what it records)."""
    entry = EvidenceEntry(
        tenant_id=tenant_id,
        kind=kind,
        message_id=message_id,
        recipient=recipient.strip().lower(),
        detail=json.dumps(detail, sort_keys=True, default=str),
        at=now() if at is None else at,
    )
    session.add(entry)
    return entry


def digest_commitment(services: Services, tenant_id: str, sha256: str) -> str:
    """What the log keeps of an original's SHA-256: a keyed hash of it (a digest in clear
    would let anyone with the database confirm a guess at a message's content, which the
    archive keeps sealed for the same reason). A receipt shows the digest itself, and is
    issued only when the stored original still gives this commitment."""
    key = services.root_key.derive(DIGEST_PURPOSE)
    return hmac_sha256(key, f"{tenant_id}\0{sha256}".encode())


def fields_of(entry: EvidenceEntry | dict[str, Any]) -> dict[str, Any]:
    """What an entry's hash covers (also what a receipt carries for it)."""
    get = entry.get if isinstance(entry, dict) else lambda k: getattr(entry, k)
    detail = get("detail")
    return {
        "tenant_id": get("tenant_id"),
        "seq": get("seq"),
        "at": get("at"),
        "kind": get("kind"),
        "message_id": get("message_id"),
        "recipient": get("recipient"),
        "detail": json.loads(detail) if isinstance(detail, str) else detail,
        "prev_hash": get("prev_hash"),
    }


def entry_hash(fields: dict[str, Any]) -> str:
    return hashlib.sha256(keys.canonical(fields)).hexdigest()


def checkpoint_payload(tenant_id: str, seq: int, head: str, at: float) -> dict[str, Any]:
    return {"type": "sealmail-evidence-checkpoint", "tenant_id": tenant_id, "seq": seq,
            "hash": head, "at": at}  # fmt: skip


async def _lock(services: Services, session: AsyncSession, tenant_id: str) -> None:
    if not services.db.is_sqlite:  # SQLite: the caller holds the write gate
        k = int.from_bytes(hashlib.sha256(b"evidence\0" + tenant_id.encode()).digest()[:8], "big")
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": k - (1 << 63)})


async def _head(session: AsyncSession, tenant_id: str) -> tuple[int, str]:
    row = (
        await session.execute(
            select(EvidenceEntry.seq, EvidenceEntry.hash)
            .where(EvidenceEntry.tenant_id == tenant_id, EvidenceEntry.seq.is_not(None))
            .order_by(EvidenceEntry.seq.desc())
            .limit(1)
        )
    ).first()
    return (int(row[0] or 0), str(row[1])) if row else (0, "")


async def chain(services: Services, tenant_id: str, checkpoint: bool = False) -> int:
    """Link the tenant's unchained entries; returns how many. A checkpoint is signed when
    :data:`CHECKPOINT_EVERY` entries have been chained since the last one, or when
    ``checkpoint`` asks for one and the head is not signed yet."""
    linked = 0
    while True:
        async with services.db.write_gate.hold(), services.db.session() as s:
            await _lock(services, s, tenant_id)
            seq, prev = await _head(s, tenant_id)
            rows = (
                await s.execute(
                    select(*_FIELDS)
                    .where(EvidenceEntry.tenant_id == tenant_id, EvidenceEntry.seq.is_(None))
                    .order_by(EvidenceEntry.id)
                    .limit(BATCH)
                )
            ).all()
            links: list[dict[str, Any]] = []
            for row in rows:
                seq += 1
                fields = fields_of({**row._mapping, "seq": seq, "prev_hash": prev})
                links.append({"id": row.id, "seq": seq, "prev_hash": prev})
                links[-1]["hash"] = prev = entry_hash(fields)
            if links:  # one executemany UPDATE by primary key, not a flush of entities
                await s.execute(update(EvidenceEntry), links)
            last = (
                await s.execute(
                    select(func.max(EvidenceCheckpoint.seq)).where(
                        EvidenceCheckpoint.tenant_id == tenant_id
                    )
                )
            ).scalar_one_or_none() or 0
            if seq and (seq - last >= CHECKPOINT_EVERY or (checkpoint and seq > last)):
                key, private = await keys.signer(s, services.vault, tenant_id)
                at = now()
                s.add(
                    EvidenceCheckpoint(
                        tenant_id=tenant_id, seq=seq, hash=prev, at=at, key_id=key.id,
                        signature=keys.sign(private, checkpoint_payload(tenant_id, seq, prev, at)),
                    )
                )  # fmt: skip
            await s.commit()
        linked += len(rows)
        if len(rows) < BATCH:
            return linked


async def tenants_with_unchained(services: Services) -> list[str]:
    async with services.db.session() as s:
        rows = await s.execute(
            select(EvidenceEntry.tenant_id).where(EvidenceEntry.seq.is_(None)).distinct()
        )
        return [str(t) for t in rows.scalars().all()]


async def record_expiries(services: Services, limit: int = BATCH) -> int:
    """An ``expired`` entry for each recipient's portal access whose time has run out and
    that has none yet (an expiry is a moment, not an act: nobody records it otherwise)."""
    from core.models import PortalAccess

    t = now()
    recorded = (
        select(EvidenceEntry.id)
        .where(
            EvidenceEntry.message_id == PortalAccess.message_id,
            EvidenceEntry.recipient == func.lower(PortalAccess.recipient),
            EvidenceEntry.kind == EXPIRED,
        )
        .exists()
    )
    async with services.db.write_gate.hold(), services.db.session() as s:
        due = (
            (
                await s.execute(
                    select(PortalAccess)
                    .where(
                        PortalAccess.expires_at <= t,
                        PortalAccess.revoked.is_(False),
                        PortalAccess.kind == "recipient",
                        ~recorded,
                    )
                    .limit(limit)
                )
            )
            .scalars()
            .all()
        )
        for a in due:
            append(s, a.tenant_id, EXPIRED, a.message_id, a.recipient, at=a.expires_at)
        await s.commit()
    return len(due)


async def chain_all(services: Services) -> int:
    """Record expiries, then chain every tenant's new entries (the worker runs this every
    minute)."""
    await record_expiries(services)
    return sum([await chain(services, t) for t in await tenants_with_unchained(services)])


@dataclasses.dataclass
class Walk:
    """What :func:`verify` found: how many entries and checkpoints held, and the first
    problem (``None`` when the whole chain holds)."""

    entries: int = 0
    checkpoints: int = 0
    problem: str | None = None


def _describe(entry: EvidenceEntry) -> str:
    what = f"{entry.kind}" + (f" of {entry.message_id}" if entry.message_id else "")
    return f"entry {entry.seq} ({what})"


async def verify(services: Services, tenant_id: str) -> Walk:
    """Walk the tenant's chain from entry 1: each entry's position, its link to the one
    before, its hash; then every signed checkpoint against the chain and its key."""
    walk = Walk()
    expected, prev = 1, ""
    heads: dict[int, str] = {}
    async with services.db.session() as s:
        stream = await s.stream_scalars(
            select(EvidenceEntry)
            .where(EvidenceEntry.tenant_id == tenant_id, EvidenceEntry.seq.is_not(None))
            .order_by(EvidenceEntry.seq)
        )
        async for entry in stream:
            if entry.seq != expected:
                walk.problem = (
                    f"entry {expected} is missing (entry {entry.seq} follows entry {expected - 1})"
                    if (entry.seq or 0) > expected
                    else f"entry {entry.seq} appears twice"
                )
                return walk
            if entry.prev_hash != prev:
                walk.problem = (
                    f"{_describe(entry)} does not follow entry {expected - 1}: "
                    "its link was changed or entries were reordered"
                )
                return walk
            if entry_hash(fields_of(entry)) != entry.hash:
                walk.problem = f"{_describe(entry)} was changed after it was written"
                return walk
            prev = entry.hash
            heads[entry.seq] = entry.hash
            expected += 1
            walk.entries += 1
        published = {
            k.id: k.public_key
            for k in (
                await s.execute(select(SigningKey).where(SigningKey.tenant_id == tenant_id))
            ).scalars()
        }
        for cp in (
            await s.execute(
                select(EvidenceCheckpoint)
                .where(EvidenceCheckpoint.tenant_id == tenant_id)
                .order_by(EvidenceCheckpoint.seq, EvidenceCheckpoint.id)
            )
        ).scalars():
            payload = checkpoint_payload(tenant_id, cp.seq, cp.hash, cp.at)
            if heads.get(cp.seq) != cp.hash:
                walk.problem = (
                    f"the checkpoint signed at entry {cp.seq} does not match the chain: "
                    f"entries up to {cp.seq} were changed or removed"
                )
                return walk
            if not keys.verify(published.get(cp.key_id, ""), payload, cp.signature):
                walk.problem = (
                    f"the checkpoint at entry {cp.seq} does not carry "
                    f"a valid signature of key {cp.key_id}"
                )
                return walk
            walk.checkpoints += 1
    return walk
