"""Support PINs (SPEC §8): what the support desk may do for a caller, and the PIN check.

The permission table is data (:data:`PERMISSIONS`): each action a caller may ask for on the
phone needs nothing (public information), a matching PIN *and* an account in good standing,
or is never done by phone at all, PIN or not. :func:`permissions` applies it; nothing else
decides.

A PIN is stored with Argon2 only (:class:`core.models.SupportPin`), so nobody — the contact
included — can read it back: "seeing" one's PIN in the portal means getting a new one (shown
once) or choosing one. Five failed checks within 24 hours lock the PIN: every later check
answers ``locked``, even with the right PIN, until the contact resets it at ``/pin``. The
lock is taken by a conditional UPDATE, so exactly one check sees it happen and the contact is
emailed once. Every check is recorded (:class:`core.models.SupportPinCheck`) and audited;
the PIN itself never is.

Mail is rendered and sent by the callers (the portal and the CLI): this layer returns what
happened (``CheckResult.locked_now``) and leaves the telling to them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import functools
import hmac
import re
import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import audit
from core.errors import NotFound, PermanentError
from core.hashing import hash_password, hmac_sha256, sha256_hex, verify_password
from core.ids import new_id, new_token
from core.models import (
    AccountContact,
    BillingAccount,
    Partner,
    SupportAgent,
    SupportPin,
    SupportPinCheck,
    Tenant,
    TenantDomain,
    now,
)

PIN_DIGITS = 6
MAX_FAILURES = 5
FAILURE_WINDOW = 24 * 3600.0


@functools.cache
def _dummy_hash() -> str:
    """Made on first use: an Argon2 hash takes 64 MiB while it runs (not at import)."""
    return hash_password("000000-sealmail-dummy-pin")


class Needs(enum.Enum):
    """What an action needs before the desk may do it for a caller on the phone."""

    NOTHING = "public"
    PIN_AND_GOOD_STANDING = "pin"
    NEVER_BY_PHONE = "never"


@dataclasses.dataclass(frozen=True)
class Action:
    key: str
    label: str
    needs: Needs


PERMISSIONS: tuple[Action, ...] = (
    Action("public_information", "Public information (status, prices, contacts)", Needs.NOTHING),
    Action("invoices_pricing", "Invoices and pricing of the account", Needs.PIN_AND_GOOD_STANDING),
    Action("account_changes", "Account or service changes", Needs.PIN_AND_GOOD_STANDING),
    Action("open_ticket", "A new ticket on the caller's behalf", Needs.PIN_AND_GOOD_STANDING),
    Action("new_services", "New services and settings", Needs.PIN_AND_GOOD_STANDING),
    Action("add_contact", "Adding a contact to the account", Needs.NEVER_BY_PHONE),
    Action("delete_service", "Deleting a service", Needs.NEVER_BY_PHONE),
)


@dataclasses.dataclass(frozen=True)
class Permission:
    key: str
    label: str
    needs: str  # public | pin | never
    allowed: bool
    why: str

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def permissions(pin_matched: bool, standing: str | None) -> list[Permission]:
    """Apply :data:`PERMISSIONS` to a caller: ``pin_matched`` only for a ``match`` result
    (never for ``locked``), ``standing`` the account's (``None`` when nothing matched)."""
    out = []
    for a in PERMISSIONS:
        if a.needs is Needs.NOTHING:
            allowed, why = True, "public: no PIN needed"
        elif a.needs is Needs.NEVER_BY_PHONE:
            allowed = False
            why = (
                "never by phone, PIN or not: the account owner does it in the portal or via the MSP"
            )
        elif not pin_matched:
            allowed, why = False, "needs a matching PIN"
        elif standing != "good":
            allowed, why = False, f"needs an account in good standing (this one is {standing})"
        else:
            allowed, why = True, "PIN matched and the account is in good standing"
        out.append(Permission(a.key, a.label, a.needs.value, allowed, why))
    return out


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


# --- who sees what ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Scope:
    """The accounts a desk may look at: all (the operator's desk) or one partner's."""

    partner_id: str | None = None

    def account_filter(self) -> Any:
        if self.partner_id is None:
            return true()
        own_tenants = select(Tenant.id).where(Tenant.partner_id == self.partner_id)
        return or_(
            BillingAccount.partner_id == self.partner_id,
            BillingAccount.tenant_id.in_(own_tenants),
        )


OPERATOR = Scope(None)


@dataclasses.dataclass(frozen=True)
class ContactView:
    contact: AccountContact
    account: BillingAccount
    tenant: Tenant | None
    partner: Partner | None
    pin: SupportPin | None

    @property
    def account_name(self) -> str:
        if self.account.name:
            return self.account.name
        if self.tenant is not None:
            return self.tenant.display_name or self.tenant.name
        return self.partner.name if self.partner is not None else self.account.external_id

    @property
    def standing(self) -> str:
        """The account's standing; a tenant account whose tenant an operator suspended or
        terminated is not in good standing either."""
        if self.account.standing == "good" and self.tenant is not None:
            if self.tenant.standing == "suspended":
                return "suspended"
            if self.tenant.standing == "terminated":
                return "terminated"
        return self.account.standing

    @property
    def pin_state(self) -> str:
        if self.pin is None:
            return "not set"
        return "locked" if self.pin.locked_at is not None else "set"

    def summary(self) -> dict[str, Any]:
        return {
            "contact_id": self.contact.id,
            "account_id": self.account.id,
            "account": self.account_name,
            "kind": self.account.kind,
            "role": self.contact.role,
            "standing": self.standing,
            "delinquent": bool(self.account.delinquent),
            "pin": self.pin_state,
        }


async def contacts_for(
    session: AsyncSession, email: str, scope: Scope = OPERATOR, account_id: str | None = None
) -> list[ContactView]:
    """Every contact record of ``email`` the desk may see, oldest first."""
    address = email.strip().lower()
    stmt = (
        select(AccountContact, BillingAccount)
        .join(BillingAccount, BillingAccount.id == AccountContact.account_id)
        .where(func.lower(AccountContact.email) == address, scope.account_filter())
        .order_by(AccountContact.created_at, AccountContact.id)
    )
    if account_id:
        stmt = stmt.where(BillingAccount.id == account_id)
    out = []
    for contact, account in (await session.execute(stmt)).all():
        tenant = await session.get(Tenant, account.tenant_id) if account.tenant_id else None
        partner = await session.get(Partner, account.partner_id) if account.partner_id else None
        pin = await session.get(SupportPin, contact.id)
        out.append(ContactView(contact, account, tenant, partner, pin))
    return out


async def mail_tenant_id(session: AsyncSession, account: BillingAccount) -> str | None:
    """The tenant whose keys seal mail to this account's contacts: the account's tenant, or
    for a partner account the partner's oldest tenant (None if it has none yet)."""
    if account.tenant_id:
        return account.tenant_id
    if account.partner_id:
        stmt = (
            select(Tenant.id)
            .where(Tenant.partner_id == account.partner_id)
            .order_by(Tenant.created_at, Tenant.id)
            .limit(1)
        )
        return (await session.execute(stmt)).scalar()
    return None


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
    usable = [v for v in views if v.pin is not None and v.pin.locked_at is None]
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


# --- support agents --------------------------------------------------------------------------


def _agent_email(email: str) -> str:
    address = email.strip().lower()
    if address.count("@") != 1 or len(address) > 320:
        raise PermanentError(f"not an email address: {email!r}")
    if any(c.isspace() or not c.isprintable() for c in address):
        raise PermanentError(f"not an email address: {email!r}")
    return address


async def add_agent(
    session: AsyncSession, email: str, partner: Partner | None = None
) -> tuple[SupportAgent, str]:
    """A new desk agent; returns the row and the agent key (shown once, SHA-256 stored)."""
    address = _agent_email(email)
    if (await session.execute(select(SupportAgent).where(SupportAgent.email == address))).scalar():
        raise PermanentError(f"{address} is already a support agent")
    key = "sma_" + new_token(32)
    agent = SupportAgent(
        id=new_id("sa_"),
        email=address,
        partner_id=partner.id if partner else None,
        key_hash=sha256_hex(key),
    )
    session.add(agent)
    await audit(
        session,
        None,
        "cli",
        "support.agent.add",
        agent.id,
        email=address,
        partner=partner.name if partner else "",
    )
    return agent, key


async def new_agent_key(session: AsyncSession, email: str) -> str:
    """Replace an agent's key (the old one stops working at once)."""
    agent = await find_agent(session, email)
    key = "sma_" + new_token(32)
    agent.key_hash = sha256_hex(key)
    await audit(session, None, "cli", "support.agent.key", agent.id, email=agent.email)
    return key


async def find_agent(session: AsyncSession, email: str) -> SupportAgent:
    address = _agent_email(email)
    row = (
        await session.execute(select(SupportAgent).where(SupportAgent.email == address))
    ).scalar()
    if row is None:
        raise NotFound(f"no support agent {address}")
    return row


async def remove_agent(session: AsyncSession, email: str) -> None:
    agent = await find_agent(session, email)
    await session.delete(agent)
    await audit(session, None, "cli", "support.agent.remove", agent.id, email=agent.email)


async def list_agents(session: AsyncSession) -> Sequence[SupportAgent]:
    return (
        (await session.execute(select(SupportAgent).order_by(SupportAgent.email))).scalars().all()
    )


async def agent_by_key(session: AsyncSession, email: str, key: str) -> SupportAgent | None:
    """The agent with this address and key; the key's hash is looked up, then compared in
    constant time with the address's row."""
    address = email.strip().lower()
    row = (
        await session.execute(select(SupportAgent).where(SupportAgent.email == address))
    ).scalar()
    wanted = sha256_hex(key.strip())
    if row is None or not hmac.compare_digest(row.key_hash, wanted):
        return None
    return row


async def agent_by_bearer(session: AsyncSession, key: str) -> SupportAgent | None:
    """The agent whose key this is (the API's bearer token); a 256-bit random key, so the
    SHA-256 lookup is the check, as for API keys."""
    row = (
        await session.execute(
            select(SupportAgent).where(SupportAgent.key_hash == sha256_hex(key.strip()))
        )
    ).scalar()
    return row


def scope_of(agent: SupportAgent) -> Scope:
    return Scope(agent.partner_id)


# --- a caller with no contact record ---------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Named:
    """The account a caller named (by tenant name or one of its domains), if the desk may
    see it."""

    tenant: Tenant
    partner: Partner | None
    account: BillingAccount | None

    @property
    def name(self) -> str:
        if self.account is not None and self.account.name:
            return self.account.name
        return self.tenant.display_name or self.tenant.name


async def find_named(session: AsyncSession, text: str, scope: Scope = OPERATOR) -> Named | None:
    """The tenant a caller names, by name or domain, within ``scope``; None if none is."""
    ref = text.strip()
    if not ref:
        return None
    domain = ref.lower().rstrip(".").rpartition("@")[2]
    in_domain = select(TenantDomain.tenant_id).where(TenantDomain.domain == domain)
    stmt = select(Tenant).where(
        or_(func.lower(Tenant.name) == ref.lower(), Tenant.id.in_(in_domain))
    )
    if scope.partner_id is not None:
        stmt = stmt.where(Tenant.partner_id == scope.partner_id)
    tenant = (await session.execute(stmt.limit(1))).scalar()
    if tenant is None:
        return None
    partner = await session.get(Partner, tenant.partner_id) if tenant.partner_id else None
    stmt2 = select(BillingAccount).where(BillingAccount.tenant_id == tenant.id).limit(1)
    account = (await session.execute(stmt2)).scalar()
    if account is None and partner is not None:
        stmt3 = select(BillingAccount).where(BillingAccount.partner_id == partner.id).limit(1)
        account = (await session.execute(stmt3)).scalar()
    return Named(tenant, partner, account)


def letter_reference() -> str:
    """``SL-`` and 10 characters from an alphabet without look-alikes, read over the phone."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    body = "".join(secrets.choice(alphabet) for _ in range(10))
    return f"SL-{body[:5]}-{body[5:]}"
