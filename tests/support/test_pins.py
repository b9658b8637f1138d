"""Support PINs (SPEC §8) at the storage level, on SQLite and PostgreSQL: the check, the
lockout, resets, and which desk sees which contact."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from core.accounts.partners import create_partner, find_partner
from core.accounts.tenants import create_tenant, get_tenant, set_standing
from core.db import Database
from core.errors import PermanentError
from core.models import AccountContact, AuditEvent, Base, BillingAccount, Partner
from core.services import Services
from support import agents, pins
from support.desk import contacts_for, find_named
from support.models import SupportPin, SupportPinCheck

KEY = b"k" * 32
SUPPORT_TABLES = {"support_pins", "support_pin_checks", "support_agents"}


async def make_account(
    services: Services,
    name: str,
    domain: str,
    email: str,
    *,
    partner: str | None = None,
    standing: str = "good",
) -> tuple[str, str]:
    """A tenant with its billing account and one contact; returns (tenant id, contact id)."""
    async with services.db.session() as s:
        if (
            partner
            and not (await s.execute(select(Partner).where(Partner.name == partner))).scalar()
        ):
            await create_partner(s, partner)
            await s.flush()
        creds = await create_tenant(s, services.keyring, name, [domain], partner=partner)
        account = BillingAccount(
            id=f"ba_{name}",
            external_id=f"acct_{name}",
            kind="tenant",
            tenant_id=creds.tenant_id,
            name=f"{name} Ltd",
            standing=standing,
        )
        s.add(account)
        await s.flush()
        contact = AccountContact(id=f"ct_{name}", account_id=account.id, email=email, role="owner")
        s.add(contact)
        await s.commit()
    return creds.tenant_id, contact.id


async def give_pin(services: Services, contact_id: str, pin: str | None = None) -> str:
    async with services.db.session() as s:
        contact = await s.get(AccountContact, contact_id)
        assert contact is not None
        value = await pins.set_pin(s, contact, pin)
        await s.commit()
    return value


async def check(services: Services, email: str, pin: str, **kw: object) -> pins.CheckResult:
    async with services.db.session() as s:
        result = await pins.check_pin(
            s, KEY, email, pin, agent=str(kw.pop("agent", "agent@desk")), **kw
        )  # type: ignore[arg-type]
        await s.commit()
    return result


def test_chosen_pins() -> None:
    assert pins.check_chosen_pin("4071 93") == "407193"
    for bad in ("12345", "111111", "123456", "987654", "12a456", "12345678901"):
        with pytest.raises(PermanentError):
            pins.check_chosen_pin(bad)
    assert len(pins.new_pin()) == 6 and pins.new_pin().isdigit()


async def test_migration_matches_models(db_url: str) -> None:
    db = Database(db_url)
    try:
        async with db.engine.connect() as conn:

            def diff(sync_conn):  # type: ignore[no-untyped-def]
                ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True})
                return compare_metadata(ctx, Base.metadata)

            changes = await conn.run_sync(diff)
    finally:
        await db.dispose()
    ours = [c for c in changes if any(t in repr(c) for t in SUPPORT_TABLES)]
    assert ours == []


async def test_right_pin_matches_and_is_audited_without_the_pin(services: Services) -> None:
    _, cid = await make_account(services, "Acme", "acme.test", "ann@acme.test")
    pin = await give_pin(services, cid)
    async with services.db.session() as s:
        row = await s.get(SupportPin, cid)
        assert row is not None and pin not in row.pin_hash and row.pin_hash.startswith("$argon2")
    r = await check(services, "Ann@Acme.test", pin)
    assert r.result is pins.Result.MATCH and r.standing == "good"
    assert {p.key for p in r.allowed if p.allowed} >= {"invoices_pricing", "open_ticket"}
    assert not {p.key for p in r.allowed if p.allowed} & {"add_contact", "delete_service"}
    r = await check(services, "ann@acme.test", "000001")
    assert r.result is pins.Result.NO_MATCH and r.failures_left == 4
    async with services.db.session() as s:
        events = (
            (await s.execute(select(AuditEvent).where(AuditEvent.action == "support.pin.check")))
            .scalars()
            .all()
        )
        checks = (await s.execute(select(SupportPinCheck))).scalars().all()
    assert [json.loads(e.detail)["result"] for e in events] == ["match", "no_match"]
    assert all(e.actor == "agent@desk" and e.subject_id == cid for e in events)
    assert all(pin not in e.detail for e in events)
    assert [(c.contact_id, c.ok) for c in checks] == [(cid, True), (cid, False)]


async def test_five_failures_lock_even_the_right_pin_until_reset(services: Services) -> None:
    _, cid = await make_account(services, "Acme", "acme.test", "ann@acme.test")
    _, other = await make_account(services, "Beta", "beta.test", "bob@beta.test")
    pin = await give_pin(services, cid)
    other_pin = await give_pin(services, other)
    wrong = "000000" if pin != "000000" else "000001"
    results = [await check(services, "ann@acme.test", wrong) for _ in range(5)]
    assert [r.result for r in results] == [pins.Result.NO_MATCH] * 5
    assert [bool(r.locked_now) for r in results] == [False] * 4 + [True]
    r = await check(services, "ann@acme.test", pin)
    assert r.result is pins.Result.LOCKED and not r.ok
    assert {p.key for p in r.allowed if p.allowed} == {"public_information"}
    # the lock is taken once: more wrong tries do not lock (and tell the contact) again
    r = await check(services, "ann@acme.test", wrong)
    assert r.result is pins.Result.LOCKED and r.locked_now == []
    # another contact is not affected
    assert (await check(services, "bob@beta.test", other_pin)).ok
    # the contact's reset unlocks; the old PIN no longer works, the new one does
    new = await give_pin(services, cid, "405817" if pin != "405817" else "405871")
    assert (await check(services, "ann@acme.test", new)).ok
    if new != pin:
        assert (await check(services, "ann@acme.test", pin)).result is pins.Result.NO_MATCH


@pytest.mark.timeout(60)
async def test_parallel_wrong_pins_get_five_compares_then_the_pin_is_locked(
    services: Services,
) -> None:
    _, cid = await make_account(services, "Acme", "acme.test", "ann@acme.test")
    pin = await give_pin(services, cid)
    wrong = "000000" if pin != "000000" else "000001"

    async def attempt() -> pins.CheckResult:
        async with services.db.session() as s:
            result = await pins.check_pin(s, KEY, "ann@acme.test", wrong, agent="a")
            await s.commit()
        return result

    results = await asyncio.gather(*(attempt() for _ in range(12)))
    compared = [r for r in results if r.result is pins.Result.NO_MATCH]
    assert len(compared) == pins.MAX_FAILURES, [r.result for r in results]
    assert sum(bool(r.locked_now) for r in results) == 1
    assert (await check(services, "ann@acme.test", pin)).result is pins.Result.LOCKED


async def test_failures_older_than_a_day_do_not_count(services: Services) -> None:
    _, cid = await make_account(services, "Acme", "acme.test", "ann@acme.test")
    pin = await give_pin(services, cid)
    async with services.db.session() as s:
        row = await s.get(SupportPin, cid)
        assert row is not None
        row.set_at = time.time() - 3 * 86400
        for _ in range(4):
            s.add(
                SupportPinCheck(
                    contact_id=cid,
                    email_hash="x",
                    agent="a",
                    result="no_match",
                    ok=False,
                    at=time.time() - 25 * 3600,
                )
            )
        await s.commit()
    wrong = "000000" if pin != "000000" else "000001"
    r = await check(services, "ann@acme.test", wrong)
    assert r.result is pins.Result.NO_MATCH and r.failures_left == 4 and not r.locked_now


async def test_suspended_account_matches_but_restricted_actions_refused(
    services: Services,
) -> None:
    _, cid = await make_account(
        services, "Acme", "acme.test", "ann@acme.test", standing="suspended"
    )
    pin = await give_pin(services, cid)
    r = await check(services, "ann@acme.test", pin)
    assert r.ok and r.standing == "suspended"
    allowed = {p.key: p.allowed for p in r.allowed}
    assert allowed["public_information"] is True
    for key in ("invoices_pricing", "account_changes", "open_ticket", "new_services"):
        assert allowed[key] is False
    # an operator suspending the tenant itself counts too
    tid2, cid2 = await make_account(services, "Beta", "beta.test", "bob@beta.test")
    pin2 = await give_pin(services, cid2)
    async with services.db.session() as s:
        tenant = await get_tenant(s, tid2)
        assert tenant is not None
        await set_standing(s, tenant, "suspended", "test")
        await s.commit()
    r = await check(services, "bob@beta.test", pin2)
    assert r.ok and r.standing == "suspended"
    assert not any(p.allowed for p in r.allowed if p.needs == "pin")


async def test_no_contact_and_no_pin(services: Services) -> None:
    _, cid = await make_account(services, "Acme", "acme.test", "ann@acme.test")
    r = await check(services, "nobody@acme.test", "123456")
    assert r.result is pins.Result.NO_CONTACT and r.matched is None
    r = await check(services, "ann@acme.test", "123456")  # no PIN set yet
    assert r.result is pins.Result.NO_PIN
    async with services.db.session() as s:
        rows = (await s.execute(select(SupportPinCheck).order_by(SupportPinCheck.id))).scalars()
        got = [(c.contact_id, c.result) for c in rows]
    assert got == [(None, "no_contact"), (cid, "no_pin")]


async def test_a_partner_desk_sees_only_its_own_accounts(services: Services) -> None:
    _, a = await make_account(services, "Acme", "acme.test", "ann@acme.test", partner="MSP-A")
    _, b = await make_account(services, "Beta", "beta.test", "bob@beta.test", partner="MSP-B")
    pin_b = await give_pin(services, b)
    async with services.db.session() as s:
        msp_a = await find_partner(s, "MSP-A")
        agent, key = await agents.add_agent(s, "desk@msp-a.test", msp_a)
        await s.commit()
        assert await agents.agent_by_key(s, "desk@msp-a.test", key) is not None
        assert await agents.agent_by_key(s, "desk@msp-a.test", key + "x") is None
        scope = agents.scope_of(agent)
        assert [v.contact.id for v in await contacts_for(s, "ann@acme.test", scope)] == [a]
        assert await contacts_for(s, "bob@beta.test", scope) == []
        assert await find_named(s, "beta.test", scope) is None
        named = await find_named(s, "acme.test", scope)
        assert named is not None and named.name == "Acme Ltd"
    # B's right PIN through A's desk: no contact record there, and nothing about B
    r = await check(services, "bob@beta.test", pin_b, scope=scope)
    assert r.result is pins.Result.NO_CONTACT and r.as_dict()["account"] is None
    # the operator's desk sees both
    assert (await check(services, "bob@beta.test", pin_b)).ok


async def test_concurrent_fifth_failures_lock_once(services: Services, db_url: str) -> None:
    """Several desks typing a wrong PIN at the same moment: one of them takes the lock, so
    the contact is told once."""
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite runs one writer at a time: nothing concurrent to race")
    _, cid = await make_account(services, "Acme", "acme.test", "ann@acme.test")
    pin = await give_pin(services, cid)
    wrong = "000000" if pin != "000000" else "000001"
    for _ in range(4):
        await check(services, "ann@acme.test", wrong)
    results = await asyncio.gather(
        *(check(services, "ann@acme.test", wrong, agent=f"desk{n}") for n in range(3))
    )
    assert sum(len(r.locked_now) for r in results) == 1
    assert (await check(services, "ann@acme.test", pin)).result is pins.Result.LOCKED
