"""The archive's tables: the index of archived messages and its blind-index terms, legal holds
(issue 5; migration 0004), and unwrapped Exchange journal reports (issue 4).
"""

from __future__ import annotations

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.models import Base, now

# --- archive index, legal holds (issue 5; migration 0004) -------------------------------------


class ArchiveEntry(Base):
    """One archived message: the gateway's accepted original (``source = gateway``) or an
    unwrapped journal report (``source = journal``). What search results show (addresses,
    subject, date, attachment names, size, SHA-256 of the original) is the sealed JSON
    ``meta_object_id``; subjects, addresses and digests are never in clear columns."""

    __tablename__ = "archive_entries"
    __table_args__ = (Index("ix_archive_entries_tenant_received", "tenant_id", "received_at"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    source: Mapped[str] = mapped_column(String(16))  # gateway | journal
    message_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    object_id: Mapped[str] = mapped_column(String(40))  # the sealed original
    meta_object_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    received_at: Mapped[float] = mapped_column(Float, index=True)
    size: Mapped[int] = mapped_column(Integer, default=0)
    has_attachment: Mapped[bool] = mapped_column(Boolean, default=False)
    decision: Mapped[str] = mapped_column(String(16), default="")
    retain_until: Mapped[float] = mapped_column(Float, index=True)
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    shredded_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class ArchiveTerm(Base):
    """A keyed blind-index token of one archive entry (HMAC of ``field:value`` under the
    tenant's index key): equality search without the value in clear."""

    __tablename__ = "archive_terms"
    __table_args__ = (
        # a token's posting list in time order: a page is an index range scan
        Index("ix_archive_terms_lookup", "tenant_id", "token", "received_at", "entry_id"),
    )
    tenant_id: Mapped[str] = mapped_column(String(32))
    entry_id: Mapped[str] = mapped_column(
        ForeignKey("archive_entries.id", ondelete="CASCADE"), primary_key=True
    )
    token: Mapped[str] = mapped_column(String(32), primary_key=True)
    received_at: Mapped[float] = mapped_column(Float, default=0.0)  # the entry's, copied


class LegalHold(Base):
    """A legal hold: while ``released_at`` is None nothing it covers is shredded or
    deleted. ``kind`` = ``tenant`` (everything of the tenant), ``search`` (the entries that
    matched a search when it was placed, in ``legal_hold_items``; the criteria only as a
    keyed hash) or ``message`` (one entry, in ``legal_hold_items``)."""

    __tablename__ = "legal_holds"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # tenant | search | message
    name: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(500), default="")
    criteria_hash: Mapped[str] = mapped_column(String(64), default="", server_default="")
    items: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    placed_by: Mapped[str] = mapped_column(String(320))
    placed_at: Mapped[float] = mapped_column(Float, default=now)
    released_by: Mapped[str] = mapped_column(String(320), default="", server_default="")
    released_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class LegalHoldItem(Base):
    """An archive entry under a search or message hold (materialised when placed)."""

    __tablename__ = "legal_hold_items"
    hold_id: Mapped[str] = mapped_column(
        ForeignKey("legal_holds.id", ondelete="CASCADE"), primary_key=True
    )
    entry_id: Mapped[str] = mapped_column(
        ForeignKey("archive_entries.id"), primary_key=True, index=True
    )
    tenant_id: Mapped[str] = mapped_column(String(32), index=True)


# --- journaling (issue 4) ---------------------------------------------------------------------


class JournalEntry(Base):
    """An Exchange journal report, unwrapped: the original message is a sealed object, its
    true recipient list (Bcc and expanded included) sealed with it; only a keyed hash of
    Message-ID + recipients is stored in clear, to archive a duplicate once."""

    __tablename__ = "journal_entries"
    __table_args__ = (UniqueConstraint("tenant_id", "dedupe_key"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[str] = mapped_column(String(32), index=True)  # the intake queue id
    dedupe_key: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str] = mapped_column(String(40))  # original message, sealed
    meta_object_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    malformed: Mapped[bool] = mapped_column(Boolean, default=False)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[float] = mapped_column(Float, default=now)
