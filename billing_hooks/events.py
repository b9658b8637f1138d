"""Inbound billing events (SPEC §7), applied exactly once.

The event's id is inserted into ``billing_events`` in the same transaction as its effect:
a replay finds it and changes nothing, and two deliveries racing each other collide on the
primary key, so only one commits. Events may arrive in any order: an ``invoice.paid``
before its ``invoice.created`` creates the invoice as paid, and any event naming an account
we have not heard of creates that account from what it says.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import exc, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_hooks import dunning, enforcement
from billing_hooks.actions import take
from billing_hooks.dunning import REASON_BILLING, REASON_TRIAL
from billing_hooks.models import BillingEvent, Invoice, PaymentMethod
from billing_hooks.notify import Mailer
from billing_hooks.schedule import RESUME
from billing_hooks.state import load, today
from core.accounts.partners import find_partner
from core.accounts.tenants import find_tenant
from core.addresses import normalize, problem
from core.config.settings import Settings
from core.db import Database
from core.errors import NotFound, TransientError
from core.ids import new_id
from core.models import AccountContact, BillingAccount, Tenant, now

log = logging.getLogger("sealmail.billing")
MAX_BODY = 256 * 1024
PLANS = ("trial", "nfr", "paid")
KINDS = ("partner", "tenant")
CONTACT_ROLES = ("billing", "owner", "technical", "other")
METHOD_ROLES = ("primary", "secondary")


class EventError(Exception):
    """The event is signed but cannot be applied as it stands (HTTP ``status``)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclasses.dataclass
class Result:
    status: int
    body: dict[str, Any]


@dataclasses.dataclass
class Ctx:
    session: AsyncSession
    settings: Settings
    mailer: Mailer | None
    created: float
    data: dict[str, Any]

    @property
    def today(self) -> datetime.date:
        return today(self.settings.billing_timezone)

    def text(self, key: str, required: bool = True, limit: int = 200) -> str:
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                raise EventError(f"data.{key} is required")
            return ""
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise EventError(f"data.{key} must be a string")
        text = str(value).strip()
        if len(text) > limit:
            raise EventError(f"data.{key} is too long")
        if _CONTROL.search(text):  # a NUL cannot even be stored in PostgreSQL
            raise EventError(f"data.{key} must not contain control characters")
        return text

    def choice(self, key: str, options: tuple[str, ...], default: str | None = None) -> str:
        value = self.text(key, required=default is None) or default or ""
        if value not in options:
            raise EventError(f"data.{key} must be one of {', '.join(options)}")
        return value

    def date(self, key: str, required: bool = True) -> datetime.date | None:
        value = self.text(key, required=required, limit=10)
        if not value:
            return None
        try:
            day = datetime.date.fromisoformat(value)
        except ValueError:
            raise EventError(f"data.{key} must be a date YYYY-MM-DD") from None
        # the schedule adds days to it: a date near the calendar's end would overflow
        if not 1970 <= day.year <= 9000:
            raise EventError(f"data.{key} must be a date between 1970 and 9000")
        return day

    def amount(self, key: str) -> int:
        value = self.data.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 10**12:
            raise EventError(f"data.{key} must be a whole number of minor units (cents)")
        return value


async def _account(ctx: Ctx) -> BillingAccount:
    """The account the event names; created from what we know if we have not seen it."""
    ext = ctx.text("account", limit=100)
    # locked for the event's transaction: a billing run judging the same account at the
    # same moment finishes first (or waits), so neither works from stale invoices
    stmt = select(BillingAccount).where(BillingAccount.external_id == ext).with_for_update()
    account = (await ctx.session.execute(stmt)).scalar()
    if account is None:
        kind = ctx.data.get("kind") if ctx.data.get("kind") in KINDS else "tenant"
        account = BillingAccount(
            id=new_id("ba_"), external_id=ext, kind=kind, name="", plan="paid", standing="good"
        )
        ctx.session.add(account)
        await ctx.session.flush()
        log.info("billing: account %s first seen in an event, created from it", ext)
    return account


async def _reinstate(ctx: Ctx, account: BillingAccount) -> None:
    state, invoices, _ = await load(ctx.session, account)
    for action in dunning.reinstatement(state, invoices, ctx.today):
        await take(ctx.session, account, action, ctx.today, ctx.settings, ctx.mailer)


async def account_created(ctx: Ctx) -> None:
    account = await _account(ctx)
    kind = ctx.choice("kind", KINDS)
    account.kind = kind
    account.name = ctx.text("name", required=False) or account.name
    try:
        if kind == "partner":
            partner = await find_partner(ctx.session, ctx.text("partner"))
            account.partner_id, account.tenant_id = partner.id, None
        else:
            tenant = await find_tenant(ctx.session, ctx.text("tenant"))
            account.tenant_id, account.partner_id = tenant.id, None
    except NotFound as err:
        # not ours yet (created in sealmail later): refused so that the billing system
        # sends it again, and nothing of it is kept
        raise EventError(f"unknown {kind}: {err}", status=422) from None
    # events that came first may have suspended or terminated the account already
    await enforcement.apply_standing(ctx.session, account)
    contacts = ctx.data.get("contacts", [])
    if not isinstance(contacts, list) or len(contacts) > 50:
        raise EventError("data.contacts must be a list")
    existing = {
        c.email
        for c in (
            await ctx.session.execute(
                select(AccountContact).where(AccountContact.account_id == account.id)
            )
        ).scalars()
    }
    for raw in contacts:
        if not isinstance(raw, dict):
            raise EventError("each contact must be an object")
        sub = Ctx(ctx.session, ctx.settings, ctx.mailer, ctx.created, raw)
        email = normalize(sub.text("email", limit=320))
        if problem(email) is not None:
            raise EventError(f"invalid contact email {email!r}")
        if email in existing:
            continue
        existing.add(email)
        ctx.session.add(
            AccountContact(
                id=new_id("ct_"),
                account_id=account.id,
                email=email,
                name=sub.text("name", required=False),
                phone=sub.text("phone", required=False, limit=64),
                role=sub.choice("role", CONTACT_ROLES, default="billing"),
            )
        )


async def subscription_created(ctx: Ctx) -> None:
    account = await _account(ctx)
    plan = ctx.choice("plan", PLANS)
    trial_ends_on = ctx.date("trial_ends_on", required=plan == "trial")
    account.plan = plan
    account.trial_ends_on = trial_ends_on if plan == "trial" else None
    account.updated_at = now()
    if account.kind == "tenant" and account.tenant_id:
        # the tenant's plan (``sealmail tenant list``) is the one its billing account pays
        # for; a partner's own subscription says nothing about its customers' plans
        tenant = await ctx.session.get(Tenant, account.tenant_id)
        if tenant is not None:
            tenant.plan = plan
    lifted = False
    if account.standing == "suspended" and account.standing_reason == REASON_TRIAL:
        # converted to a paid plan (or the trial extended): the trial's end no longer holds
        lifted = plan != "trial" or bool(trial_ends_on and trial_ends_on > ctx.today)
    if account.standing == "suspended" and account.standing_reason == REASON_BILLING:
        lifted = plan == "nfr"  # a free licence is never dunned
    if lifted:
        action = dunning.Action(RESUME, account.id, reason=account.standing_reason)
        await take(ctx.session, account, action, ctx.today, ctx.settings, ctx.mailer)


async def subscription_cancelled(ctx: Ctx) -> None:
    account = await _account(ctx)
    if account.standing != "terminated":
        await enforcement.terminate(ctx.session, account, "cancelled")


async def _invoice(ctx: Ctx, account: BillingAccount) -> Invoice:
    ext = ctx.text("invoice", limit=100)
    inv = (await ctx.session.execute(select(Invoice).where(Invoice.external_id == ext))).scalar()
    if inv is None:
        inv = Invoice(id=new_id("in_"), external_id=ext, account_id=account.id, status="open")
        ctx.session.add(inv)
    elif inv.account_id != account.id:
        raise EventError(f"invoice {ext} belongs to another account", status=422)
    return inv


def _mark_paid(ctx: Ctx, inv: Invoice) -> None:
    if inv.status == "paid":
        return
    paid_at = ctx.data.get("paid_at", ctx.created)
    if not _unix_seconds(paid_at):
        raise EventError("data.paid_at must be unix seconds")
    inv.status = "paid"
    inv.paid_at = float(paid_at)
    inv.paid_on = today(ctx.settings.billing_timezone, float(paid_at))


async def invoice_created(ctx: Ctx) -> None:
    account = await _account(ctx)
    inv = await _invoice(ctx, account)
    inv.number = ctx.text("number", required=False, limit=64) or inv.number or ""
    inv.amount_cents = ctx.amount("amount")
    currency = ctx.text("currency", required=False, limit=3).upper() or "USD"
    if not currency.isalpha() or len(currency) != 3:
        raise EventError("data.currency must be a 3-letter code")
    inv.currency = currency
    inv.issued_on = ctx.date("issued_on", required=False)
    inv.due_on = ctx.date("due_on")
    if ctx.data.get("status") == "void":
        inv.status = "void"
    # a voided (credited) invoice or a later due date can leave nothing overdue: like a
    # payment, that reinstates at once (reinstatement() keeps a suspension that still holds)
    await ctx.session.flush()
    await _reinstate(ctx, account)


async def invoice_paid(ctx: Ctx) -> None:
    account = await _account(ctx)
    inv = await _invoice(ctx, account)
    _mark_paid(ctx, inv)
    await ctx.session.flush()
    await _reinstate(ctx, account)


async def _method(ctx: Ctx, account: BillingAccount, required: bool) -> PaymentMethod | None:
    ext = ctx.text("payment_method", required=required, limit=100)
    if not ext:
        return None
    pm = (
        await ctx.session.execute(select(PaymentMethod).where(PaymentMethod.external_id == ext))
    ).scalar()
    if pm is None:
        pm = PaymentMethod(id=new_id("pm_"), external_id=ext, account_id=account.id, role="primary")
        ctx.session.add(pm)
    elif pm.account_id != account.id:
        raise EventError(f"payment method {ext} belongs to another account", status=422)
    return pm


async def invoice_payment_failed(ctx: Ctx) -> None:
    account = await _account(ctx)
    await _invoice(ctx, account)
    pm = await _method(ctx, account, required=False)
    if pm is not None:
        pm.status, pm.updated_at = "failed", now()


async def payment_method_added(ctx: Ctx) -> None:
    account = await _account(ctx)
    pm = await _method(ctx, account, required=True)
    assert pm is not None
    pm.role = ctx.choice("role", METHOD_ROLES)
    pm.status, pm.updated_at = "active", now()


async def charge_succeeded(ctx: Ctx) -> None:
    account = await _account(ctx)
    pm = await _method(ctx, account, required=False)
    if pm is not None:
        pm.status, pm.updated_at = "active", now()
    if ctx.text("invoice", required=False):
        _mark_paid(ctx, await _invoice(ctx, account))
    await ctx.session.flush()
    await _reinstate(ctx, account)


async def charge_failed(ctx: Ctx) -> None:
    account = await _account(ctx)
    pm = await _method(ctx, account, required=False)
    if pm is not None:
        pm.status, pm.updated_at = "failed", now()
    if ctx.text("invoice", required=False):
        await _invoice(ctx, account)


HANDLERS: dict[str, Callable[[Ctx], Awaitable[None]]] = {
    "account.created": account_created,
    "subscription.created": subscription_created,
    "subscription.cancelled": subscription_cancelled,
    "invoice.created": invoice_created,
    "invoice.paid": invoice_paid,
    "invoice.payment_failed": invoice_payment_failed,
    "payment_method.added": payment_method_added,
    "charge.succeeded": charge_succeeded,
    "charge.failed": charge_failed,
}


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# a calendar day can be made of it: after 1970, before the year 10000, and a real number (JSON
# NaN and Infinity, which Python's parser accepts, are not)
_MAX_UNIX = 253_402_300_799


def _unix_seconds(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return 0 <= value <= _MAX_UNIX  # NaN compares False


def parse(body: bytes) -> tuple[str, str, float, dict[str, Any]]:
    """(id, type, created, data) of a signed body, or :class:`EventError` (400)."""
    try:
        event = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep
        raise EventError("body is not valid JSON") from None
    if not isinstance(event, dict):
        raise EventError("body must be a JSON object")
    event_id, type_ = event.get("id"), event.get("type")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= 200 or _CONTROL.search(event_id):
        raise EventError("'id' must be a non-empty string of at most 200 characters")
    if not isinstance(type_, str) or not 0 < len(type_) <= 64 or _CONTROL.search(type_):
        raise EventError("'type' must be a non-empty string")
    created = event.get("created", now())
    if not _unix_seconds(created):
        raise EventError("'created' must be unix seconds")
    data = event.get("data", {})
    if not isinstance(data, dict):
        raise EventError("'data' must be an object")
    return event_id, type_, float(created), data


async def handle(
    db: Database, settings: Settings, body: bytes, mailer: Mailer | None = None
) -> Result:
    """Apply one verified event body; the HTTP answer."""
    try:
        event_id, type_, created, data = parse(body)
    except EventError as err:
        return Result(err.status, {"error": str(err)})
    for attempt in range(3):
        try:
            return await _apply_once(db, settings, mailer, event_id, type_, created, data)
        except (exc.IntegrityError, TransientError):
            # a twin delivery committed first, or SQLite's writer was busy: look again
            async with db.session() as s:
                if await s.get(BillingEvent, event_id) is not None:
                    return Result(200, {"status": "already processed", "id": event_id})
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def _apply_once(
    db: Database,
    settings: Settings,
    mailer: Mailer | None,
    event_id: str,
    type_: str,
    created: float,
    data: dict[str, Any],
) -> Result:
    async with db.session() as s:
        if await s.get(BillingEvent, event_id) is not None:
            return Result(200, {"status": "already processed", "id": event_id})
        handler = HANDLERS.get(type_)
        s.add(BillingEvent(id=event_id, type=type_, outcome="applied" if handler else "ignored"))
        await s.flush()  # the primary key decides who applies it
        if handler is None:
            log.warning(
                "billing: event %s of unknown type %r acknowledged, ignored", event_id, type_
            )
            await s.commit()
            return Result(200, {"status": "ignored", "id": event_id, "reason": "unknown type"})
        try:
            await handler(Ctx(s, settings, mailer, created, data))
        except EventError as err:
            await s.rollback()
            log.warning("billing: event %s (%s) refused: %s", event_id, type_, err)
            return Result(err.status, {"error": str(err), "id": event_id})
        await s.commit()
        log.info("billing: event %s (%s) applied", event_id, type_)
        return Result(200, {"status": "applied", "id": event_id})
