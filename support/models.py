"""The support feature's tables (migration 0006): contacts' PINs, the desk's PIN checks and
the desk agents. ``core`` keeps the accounts and contacts they point at."""

from __future__ import annotations

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.models import Base, now


class SupportPin(Base):
    """An account contact's support PIN: Argon2 only, never the PIN. Kept beside the contact
    (1:1) rather than in ``account_contacts`` so billing code never loads PIN hashes.
    ``locked_at`` is set by the fifth failure in 24 hours (a conditional UPDATE, so the contact
    is emailed once); only the contact's reset at ``/pin`` clears it."""

    __tablename__ = "support_pins"
    contact_id: Mapped[str] = mapped_column(
        ForeignKey("account_contacts.id", ondelete="CASCADE"), primary_key=True
    )
    pin_hash: Mapped[str] = mapped_column(String(200))
    set_at: Mapped[float] = mapped_column(Float, default=now)
    locked_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class SupportPinCheck(Base):
    """One PIN check by the support desk: who asked, about which contact (or, with no contact
    record, a keyed hash of the address asked about), and the result; never the PIN."""

    __tablename__ = "support_pin_checks"
    __table_args__ = (Index("ix_support_pin_checks_contact_at", "contact_id", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    contact_id: Mapped[str | None] = mapped_column(
        ForeignKey("account_contacts.id", ondelete="CASCADE"), nullable=True
    )
    email_hash: Mapped[str] = mapped_column(String(64), index=True)
    agent: Mapped[str] = mapped_column(String(320))
    result: Mapped[str] = mapped_column(String(16))  # match | no_match | locked | no_pin | ...
    ok: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[float] = mapped_column(Float, default=now, index=True)


class SupportAgent(Base):
    """Someone at a support desk. ``partner_id`` None: the operator's own desk (every
    account); else an MSP's desk (that partner's account and its tenants' accounts only).
    Signs in at ``/support/login`` with a random agent key shown once (SHA-256 stored)."""

    __tablename__ = "support_agents"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)  # lower-case
    partner_id: Mapped[str | None] = mapped_column(
        ForeignKey("partners.id", ondelete="CASCADE"), nullable=True, index=True
    )
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[float] = mapped_column(Float, default=now)
