"""The one email-code sign-in (``portal.signin``) itself, on both databases and both places a
code rests (a link's ``portal_codes`` rows; a typed-address door's pending sign-in): of two
concurrent right answers exactly one wins, the sixth try is refused, an expired code is
refused, and only the newest code counts. The doors' own pages are tested with each door."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import select, update
from starlette.requests import Request

from core.models import OneTimeCode, PortalAccess, PortalSession
from core.services import Services
from portal.signin import codes
from portal.signin.by_address import AddressDoor, pending_of, start
from portal.signin.codes import MAX_FAILURES, Store
from portal.signin.stores import AccessCodes
from tests.portal.conftest import make_tenant, seal_message

KEY = b"k" * 32
DOOR = AddressDoor("test", "test-code", "__Host-test_pending", "/test")
IP = "192.0.2.7"

# a store with one live code in it: (store, code, stores for further sessions)
Made = tuple[Store, str, Callable[[], Store]]


def _request(cookie: str = "") -> Request:
    headers = [(b"cookie", f"{DOOR.pending_cookie}={cookie}".encode())] if cookie else []
    return Request({"type": "http", "method": "POST", "path": "/", "headers": headers})


async def _access_codes(services: Services) -> Made:
    tenant_id = await make_tenant(services, "Acme", "acme.example")
    sealed = await seal_message(services, tenant_id, recipients=["bob@partner.example"])
    async with services.db.session() as s:
        access = (
            (
                await s.execute(
                    select(PortalAccess).where(PortalAccess.message_id == sealed.message_id)
                )
            )
            .scalars()
            .one()
        )
        store = AccessCodes(access.id)
        code = await store.issue(s, KEY)
        await s.commit()
    return store, code, lambda: AccessCodes(access.id)


async def _pending(services: Services) -> Made:
    async with services.db.session() as s:
        secret, code = await start(s, _request(), DOOR, KEY, "user-1")
        await s.commit()

    def again() -> Store:
        found = pending_of(_request(secret), DOOR, IP)
        assert found is not None
        return found[0]

    return again(), code, again


MAKERS: dict[str, Callable[[Services], Awaitable[Made]]] = {
    "access": _access_codes,
    "pending": _pending,
}


async def _check(services: Services, store: Store, submitted: str) -> codes.Outcome:
    async with services.db.session() as s:
        held = await store.newest(s)
        outcome = await codes.check(s, KEY, store, held, submitted)
        await s.commit()
    return outcome


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


@pytest.mark.parametrize("where", sorted(MAKERS))
async def test_of_two_concurrent_right_answers_exactly_one_wins(
    services: Services, where: str
) -> None:
    _store, code, fresh = await MAKERS[where](services)
    both_read = asyncio.Barrier(2)

    async def attempt() -> bool:
        store = fresh()
        async with services.db.session() as s:
            held = await store.newest(s)
            await both_read.wait()  # both have seen the code unused
            outcome = await codes.check(s, KEY, store, held, code)
            await s.commit()
        return outcome.ok

    results = await asyncio.gather(attempt(), attempt())
    assert sorted(results) == [False, True]
    assert not (await _check(services, fresh(), code)).ok  # and it stays used


@pytest.mark.parametrize("where", sorted(MAKERS))
async def test_the_sixth_try_is_refused(services: Services, where: str) -> None:
    store, code, fresh = await MAKERS[where](services)
    for n in range(MAX_FAILURES):
        outcome = await _check(services, fresh(), _wrong(code))
        assert not outcome.ok
        assert outcome.reason == ("wrong" if n < MAX_FAILURES - 1 else "dead")
    outcome = await _check(services, fresh(), code)
    assert (outcome.ok, outcome.reason) == (False, "dead")


@pytest.mark.parametrize("where", sorted(MAKERS))
@pytest.mark.timeout(60)
async def test_parallel_wrong_guesses_that_all_read_the_code_first_get_five_compares(
    services: Services, where: str
) -> None:
    _store, code, fresh = await MAKERS[where](services)
    guesses = 12
    all_read = asyncio.Barrier(guesses)

    async def attempt() -> codes.Outcome:
        store = fresh()
        async with services.db.session() as s:
            held = await store.newest(s)
            await all_read.wait()  # every guess has seen the code with no tries yet
            outcome = await codes.check(s, KEY, store, held, _wrong(code))
            await s.commit()
        return outcome

    outcomes = await asyncio.gather(*(attempt() for _ in range(guesses)))
    assert sum(o.checked for o in outcomes) == MAX_FAILURES
    assert not any(o.ok for o in outcomes)
    outcome = await _check(services, fresh(), code)
    assert (outcome.ok, outcome.checked, outcome.reason) == (False, False, "dead")


@pytest.mark.parametrize("where", sorted(MAKERS))
async def test_an_expired_code_is_refused(services: Services, where: str) -> None:
    _store, code, fresh = await MAKERS[where](services)
    async with services.db.session() as s:
        await s.execute(update(OneTimeCode).values(expires_at=time.time() - 1))
        await s.execute(update(PortalSession).values(expires_at=time.time() - 1))
        await s.commit()
    outcome = await _check(services, fresh(), code)
    assert not outcome.ok and outcome.reason in ("dead", "none")


async def test_only_the_newest_code_of_a_link_counts(services: Services) -> None:
    store, first, fresh = await _access_codes(services)
    async with services.db.session() as s:
        second = await fresh().issue(s, KEY)  # type: ignore[attr-defined]
        await s.commit()
    if first != second:
        assert not (await _check(services, fresh(), first)).ok
    assert (await _check(services, fresh(), second)).ok


async def test_only_the_newest_pending_sign_in_of_a_browser_counts(services: Services) -> None:
    async with services.db.session() as s:
        old_secret, first = await start(s, _request(), DOOR, KEY, "user-1")
        await s.commit()
    async with services.db.session() as s:  # the same browser asks again
        new_secret, second = await start(s, _request(old_secret), DOOR, KEY, "user-1")
        await s.commit()
    old = pending_of(_request(old_secret), DOOR, IP)
    new = pending_of(_request(new_secret), DOOR, IP)
    assert old is not None and new is not None
    outcome = await _check(services, old[0], first)
    assert (outcome.ok, outcome.reason) == (False, "none")  # the old one is gone
    assert (await _check(services, new[0], second)).ok
    async with services.db.session() as s:  # used up: no pending row is left
        assert (await s.execute(select(PortalSession))).scalars().all() == []


async def test_a_pending_sign_in_for_nobody_never_matches(services: Services) -> None:
    async with services.db.session() as s:
        secret, code = await start(s, _request(), DOOR, KEY, "")
        await s.commit()
    found = pending_of(_request(secret), DOOR, IP)
    assert found is not None
    async with services.db.session() as s:
        held = await found[0].newest(s)
        outcome = await codes.check(s, KEY, found[0], held, code, allowed=False)
    assert (outcome.ok, outcome.reason) == (False, "wrong")
