"""Support PINs (SPEC §8): setting one, and the desk's check with its lockout.

A PIN is stored with Argon2 only (:class:`support.models.SupportPin`), so nobody — the contact
included — can read it back: "seeing" one's PIN in the portal means getting a new one (shown
once) or choosing one. Five failed checks within 24 hours lock the PIN: every later check
answers ``locked``, even with the right PIN, until the contact resets it at ``/pin``. The
lock is taken by a conditional UPDATE, so exactly one check sees it happen and the contact is
emailed once. A check takes the PIN's row lock before it counts and compares, so parallel
checks of one PIN are compared one after another and the fifth miss stops the rest. Every
check is recorded (:class:`support.models.SupportPinCheck`) and audited; the PIN itself
never is.

This module returns what happened (``CheckResult.locked_now``); :mod:`support.notify` tells
the contacts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import functools
import re
import secrets
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import audit
from core.errors import PermanentError
from core.hashing import hash_password, hmac_sha256, verify_password
from core.models import AccountContact, BillingAccount, now
from support.desk import OPERATOR, ContactView, Scope, contacts_for
from support.models import SupportPin, SupportPinCheck
from support.permissions import Permission, permissions

PIN_DIGITS = 6
MAX_FAILURES = 5
FAILURE_WINDOW = 24 * 3600.0


class KeyDeriver(Protocol):
    """The root key (``Services.root_key``): derives a key for one purpose."""

    def derive(self, purpose: str) -> bytes: ...


def email_key(root_key: KeyDeriver) -> bytes:
    """The key of :func:`email_hash` (the same for the portal, its API and the CLI)."""
    return root_key.derive("support-email")


@functools.cache
def _dummy_hash() -> str:
    """Made on first use: an Argon2 hash takes 64 MiB while it runs (not at import)."""
    return hash_password("000000-sealmail-dummy-pin")


# --- PINs ------------------------------------------------------------------------------------


def new_pin() -> str:
    return f"{secrets.randbelow(10**PIN_DIGITS):0{PIN_DIGITS}d}"


def normalize_pin(text: str) -> str:
    return "".join(ch for ch in text if not ch.isspace() and ch != "-")


def check_chosen_pin(pin: str) -> str:
    """A PIN a contact chose, normalized; :class:`PermanentError` says what is wrong."""
    p = normalize_pin(pin)
    if not re.fullmatch(r"[0-9]{6,10}", p):
        raise PermanentError("a PIN is 6 to 10 digits")
    steps = {int(b) - int(a) for a, b in zip(p, p[1:], strict=False)}
    if len(set(p)) == 1 or steps in ({1}, {-1}):
        raise PermanentError("that PIN is too easy to guess (one digit repeated, or a run)")
    return p


def email_hash(key: bytes, email: str) -> str:
    """Keyed hash of an address asked about with no contact record (never the address)."""
    return hmac_sha256(key, f"support-email\x00{email.strip().lower()}".encode())


async def set_pin(session: AsyncSession, contact: AccountContact, pin: str | None = None) -> str:
    """Give ``contact`` a new PIN (random unless chosen) and return it, to show once. The old
    PIN stops working, a lock is lifted and earlier failures stop counting. The caller
    commits and tells the contact."""
    value = check_chosen_pin(pin) if pin is not None else new_pin()
    hashed = await asyncio.to_thread(hash_password, value)
    row = await session.get(SupportPin, contact.id)
    t = now()
    if row is None:
        session.add(SupportPin(contact_id=contact.id, pin_hash=hashed, set_at=t))
    else:
        row.pin_hash, row.set_at, row.locked_at = hashed, t, None
    account = await session.get(BillingAccount, contact.account_id)
    tenant_id = account.tenant_id if account else None
    await audit(
        session, tenant_id, contact.email, "support.pin.set", contact.id, chosen=pin is not None
    )
    return value


# --- the check -------------------------------------------------------------------------------


class Result(enum.Enum):
    MATCH = "match"
    NO_MATCH = "no_match"
    LOCKED = "locked"  # locked by failures: only the contact's reset opens it again
    NO_PIN = "no_pin"  # the contact has not set a PIN yet
    NO_CONTACT = "no_contact"  # no contact record: the caller gets the letter


@dataclasses.dataclass(frozen=True)
class CheckResult:
    email: str
    result: Result
    matched: ContactView | None
    contacts: list[ContactView]
    locked_now: list[ContactView]  # locked by this check: tell them (once)
    failures_left: int

    @property
    def ok(self) -> bool:
        return self.result is Result.MATCH

    @property
    def standing(self) -> str | None:
        if self.matched is not None:
            return self.matched.standing
        return None

    @property
    def allowed(self) -> list[Permission]:
        return permissions(self.ok, self.standing)

    def as_dict(self) -> dict[str, Any]:
        m = self.matched
        return {
            "email": self.email,
            "result": self.result.value,
            "match": self.ok,
            "account": m.account_name if m else None,
            "account_id": m.account.id if m else None,
            "standing": self.standing,
            "delinquent": bool(m.account.delinquent) if m else None,
            "locked_now": bool(self.locked_now),
            "failures_left": self.failures_left,
            "actions": [p.as_dict() for p in self.allowed],
        }


async def _failures(session: AsyncSession, contact_id: str, since: float) -> int:
    stmt = (
        select(func.count())
        .select_from(SupportPinCheck)
        .where(
            SupportPinCheck.contact_id == contact_id,
            SupportPinCheck.result == Result.NO_MATCH.value,
            SupportPinCheck.at > since,
        )
    )
    return int((await session.execute(stmt)).scalar() or 0)


async def _hold(session: AsyncSession, views: list[ContactView]) -> None:
    """Take the write lock on each PIN about to be compared, then read it again: checks of
    one PIN run one after the other until the caller commits, so each counts the misses
    before it and at most ``MAX_FAILURES`` compares ever happen, however many checks run
    in parallel (a row lock on PostgreSQL, the database's write lock on SQLite)."""
    held = sorted((v for v in views if v.pin is not None), key=lambda v: v.contact.id)
    for v in held:
        assert v.pin is not None
        await session.execute(
            update(SupportPin)
            .where(SupportPin.contact_id == v.contact.id)
            .values(set_at=SupportPin.set_at)
        )
        await session.refresh(v.pin)


async def _record(
    session: AsyncSession,
    key: bytes,
    view: ContactView | None,
    email: str,
    agent: str,
    result: Result,
    at: float,
) -> None:
    session.add(
        SupportPinCheck(
            contact_id=view.contact.id if view else None,
            email_hash=email_hash(key, email),
            agent=agent,
            result=result.value,
            ok=result is Result.MATCH,
            at=at,
        )
    )
    await audit(
        session,
        view.account.tenant_id if view else None,
        agent,
        "support.pin.check",
        view.contact.id if view else "",
        result=result.value,
        account=view.account.id if view else "",
    )


async def check_pin(
    session: AsyncSession,
    key: bytes,
    email: str,
    pin: str,
    *,
    agent: str,
    scope: Scope = OPERATOR,
    account_id: str | None = None,
) -> CheckResult:
    """Check ``(email, pin)`` for the desk ``agent``; records and audits the check. The caller
    commits, then tells the contacts in ``locked_now``.

    An address may be a contact of several accounts (each with its own PIN): the PIN is
    tried against each unlocked one, and a miss counts against each of them."""
    address = email.strip().lower()
    given = normalize_pin(pin)
    views = await contacts_for(session, address, scope, account_id)
    t = now()
    if not views:
        await asyncio.to_thread(verify_password, _dummy_hash(), given)  # same time either way
        await _record(session, key, None, address, agent, Result.NO_CONTACT, t)
        return CheckResult(address, Result.NO_CONTACT, None, [], [], 0)
    await _hold(session, views)
    usable = [v for v in views if v.pin is not None and v.pin.locked_at is None]
    for v in usable:
        assert v.pin is not None
        if await _failures(session, v.contact.id, max(t - FAILURE_WINDOW, v.pin.set_at)) >= (
            MAX_FAILURES
        ):
            usable = []  # five misses already (a lock not yet taken): compare nothing
            break
    for v in usable:
        assert v.pin is not None
        right: bool = await asyncio.to_thread(verify_password, v.pin.pin_hash, given)
        if given and right:
            await _record(session, key, v, address, agent, Result.MATCH, t)
            return CheckResult(address, Result.MATCH, v, views, [], MAX_FAILURES)
    if not usable:
        locked = [v for v in views if v.pin is not None]
        result = Result.LOCKED if locked else Result.NO_PIN
        for v in locked or views:
            await _record(session, key, v, address, agent, result, t)
        return CheckResult(address, result, None, views, [], 0)
    locked_now: list[ContactView] = []
    left = MAX_FAILURES
    for v in usable:
        assert v.pin is not None
        await _record(session, key, v, address, agent, Result.NO_MATCH, t)
        await session.flush()
        failures = await _failures(session, v.contact.id, max(t - FAILURE_WINDOW, v.pin.set_at))
        left = min(left, max(0, MAX_FAILURES - failures))
        if failures >= MAX_FAILURES:
            took = await session.execute(
                update(SupportPin)
                .where(SupportPin.contact_id == v.contact.id, SupportPin.locked_at.is_(None))
                .values(locked_at=t)
            )
            if getattr(took, "rowcount", 0) == 1:
                locked_now.append(v)
                await audit(
                    session,
                    v.account.tenant_id,
                    agent,
                    "support.pin.locked",
                    v.contact.id,
                    failures=failures,
                )
    return CheckResult(address, Result.NO_MATCH, None, views, locked_now, left)
