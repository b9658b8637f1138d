"""The evidence log's tables: entries, signed checkpoints and the tenants' signing keys."""

from __future__ import annotations

from sqlalchemy import Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.models import Base, now


class EvidenceEntry(Base):
    """One fact about a message (``accepted``, ``decided``, ``sealed``, ``notified``,
    ``delivered``, ``opened``, ...). Written unchained in the transaction of what it records
    (``seq`` empty); :func:`core.evidence.log.chain` then gives it its place in the tenant's
    chain: ``seq`` (1, 2, ...), the previous entry's hash and its own. Never content:
    ``detail`` holds digests, dispositions, replies and times as JSON."""

    __tablename__ = "evidence_entries"
    __table_args__ = (
        UniqueConstraint("tenant_id", "seq"),
        Index("ix_evidence_entries_message", "message_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(32), index=True)
    seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    at: Mapped[float] = mapped_column(Float, default=now)
    kind: Mapped[str] = mapped_column(String(32))
    message_id: Mapped[str] = mapped_column(String(32), default="")
    recipient: Mapped[str] = mapped_column(String(320), default="")
    detail: Mapped[str] = mapped_column(Text, default="{}")
    prev_hash: Mapped[str] = mapped_column(String(64), default="")
    hash: Mapped[str] = mapped_column(String(64), default="")


class EvidenceCheckpoint(Base):
    """The chain's head at ``seq`` (its ``hash``), signed with the tenant's key ``key_id``."""

    __tablename__ = "evidence_checkpoints"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(32), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[float] = mapped_column(Float, default=now)
    key_id: Mapped[str] = mapped_column(String(40))
    signature: Mapped[str] = mapped_column(Text)


class SigningKey(Base):
    """A tenant's Ed25519 receipt-signing key: the public half in clear (published), the
    private half a sealed object (re-wrapped by key rotation like every other). A new key
    retires the old one, which stays published so old receipts keep verifying."""

    __tablename__ = "signing_keys"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # "rk_" + 16 hex of its digest
    tenant_id: Mapped[str] = mapped_column(String(32), index=True)
    public_key: Mapped[str] = mapped_column(String(64))  # base64 of the raw 32 bytes
    private_object_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[float] = mapped_column(Float, default=now)
    retired_at: Mapped[float | None] = mapped_column(Float, nullable=True)
