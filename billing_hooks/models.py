"""Billing's tables: invoices, payment methods, applied billing events, dunning actions taken
and signed webhooks waiting to go out (issue 6; migration 0005). The billing accounts and
their contacts are shared (branding and the support desk read them) and stay in
:mod:`core.models`.
"""

from __future__ import annotations

import datetime

from sqlalchemy import Date, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.models import Base, now

# --- invoices, payments, dunning (issue 6; migration 0005) ------------------------------------


class Invoice(Base):
    __tablename__ = "invoices"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("billing_accounts.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[str] = mapped_column(String(64), default="")
    amount_cents: Mapped[int] = mapped_column(Integer, default=0)  # minor units
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    issued_on: Mapped[datetime.date | None] = mapped_column(Date, nullable=True)
    due_on: Mapped[datetime.date | None] = mapped_column(Date, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | paid | void
    paid_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    paid_on: Mapped[datetime.date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[float] = mapped_column(Float, default=now)


class PaymentMethod(Base):
    __tablename__ = "payment_methods"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("billing_accounts.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16), default="primary")  # primary | secondary
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | failed
    created_at: Mapped[float] = mapped_column(Float, default=now)
    updated_at: Mapped[float] = mapped_column(Float, default=now)


class BillingEvent(Base):
    """An inbound billing event already applied: its id is the primary key, inserted in the
    same transaction as the event's effect, so each event is applied exactly once."""

    __tablename__ = "billing_events"
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(32), default="applied")  # applied | ignored
    received_at: Mapped[float] = mapped_column(Float, default=now)


class DunningAction(Base):
    """An action of the dunning schedule that was taken. The unique key makes a day's run
    idempotent: the same action for the same account, invoice and period is taken once."""

    __tablename__ = "dunning_actions"
    __table_args__ = (
        UniqueConstraint(
            "account_id", "invoice_id", "action", "period", name="uq_dunning_actions_once"
        ),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("billing_accounts.id", ondelete="CASCADE"), index=True
    )
    invoice_id: Mapped[str] = mapped_column(String(32), default="")  # "" = about the account
    action: Mapped[str] = mapped_column(String(40))
    period: Mapped[str] = mapped_column(String(16), default="")
    for_date: Mapped[datetime.date] = mapped_column(Date)
    created_at: Mapped[float] = mapped_column(Float, default=now)


class OutboundWebhook(Base):
    """A signed webhook to the billing system waiting to be delivered (retries with
    backoff)."""

    __tablename__ = "outbound_webhooks"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # the event id we send
    type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[str] = mapped_column(Text)  # the JSON body, exactly as signed and sent
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(Float, default=now, index=True)
    delivered_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_error: Mapped[str] = mapped_column(String(500), default="", server_default="")
    created_at: Mapped[float] = mapped_column(Float, default=now)
