"""core.setup on both databases: one message claimed per check (the second loses), steps of
other messages and faults after a claim are ignored, a finished check takes no more steps,
the per-process cache answers from memory until its refresh interval passes; and connector
tokens: a new one beside the old, the last one kept."""

from __future__ import annotations

import pytest

from core.accounts.authentication import tenant_by_connector_token
from core.accounts.connector_tokens import issue_token, list_tokens, revoke_token, token_id
from core.errors import NotFound, PermanentError
from core.services import Services
from core.setup import checks
from core.setup.watch import record_fault, record_message, watch_of
from tests.gateway.conftest import make_tenant

pytestmark = pytest.mark.timeout(60)


async def _open(services: Services, tenant_id: str) -> str:
    async with services.db.session() as s:
        check = await checks.open_check(s, tenant_id, "admin@acme.example")
        await s.commit()
    watch_of(services.db).stale()
    return check.id


async def _steps(services: Services, tenant_id: str) -> list[str]:
    async with services.db.session() as s:
        view = await checks.read_check(s, tenant_id)
    assert view is not None
    return [st.step for st in view.steps]


async def test_one_message_per_check(services: Services) -> None:
    t = await make_tenant(services)
    await _open(services, t.id)
    db = services.db
    arrived = [(checks.ARRIVED, True, "from 192.0.2.1")]
    assert await record_message(db, t.id, "q1", arrived, claim=True)
    assert not await record_message(db, t.id, "q2", arrived, claim=True)  # taken
    assert not await record_message(db, t.id, "q2", [(checks.DECIDED, True, "x")])
    # a refused session no longer counts once a message is watched
    assert not await record_fault(db, t.id, [(checks.NO_TOKEN, False, "no token")])
    assert await record_message(db, t.id, "q1", [(checks.DECIDED, True, "pass")])
    assert await record_message(
        db, t.id, "q1", [(checks.HANDED_BACK, True, "250")], finish=checks.OK
    )
    assert not await record_message(db, t.id, "q1", [(checks.REFUSED, False, "late")])
    assert await _steps(services, t.id) == [checks.ARRIVED, checks.DECIDED, checks.HANDED_BACK]
    async with services.db.session() as s:
        view = await checks.read_check(s, t.id)
    assert view is not None and view.state == checks.OK
    assert view.as_json()["steps"][0]["title"] == "Arrived"  # type: ignore[index]


async def test_fault_before_any_message_ends_the_check(services: Services) -> None:
    t = await make_tenant(services)
    await _open(services, t.id)
    assert await record_fault(services.db, t.id, [(checks.NO_TOKEN, False, "no token")])
    async with services.db.session() as s:
        view = await checks.read_check(s, t.id)
    assert view is not None and view.state == checks.FAULT
    # ended: nothing more is written, and the cache no longer lists it
    assert not await record_message(services.db, t.id, "q1", [], claim=True)


async def test_the_cache_answers_from_memory(services: Services) -> None:
    t = await make_tenant(services)
    watch = watch_of(services.db)
    watch.stale()
    assert await watch.open_checks(services.db) == {}
    async with services.db.session() as s:
        await checks.open_check(s, t.id, "admin@acme.example")
        await s.commit()
    # within the refresh interval the old answer stands: no query per message
    assert await watch.open_checks(services.db) == {}
    watch.stale()  # as if the interval had passed
    assert set(await watch.open_checks(services.db)) == {t.id}
    other = await make_tenant(services, "Other", ("other.example",))
    assert not await record_message(services.db, other.id, "q9", [], claim=True)


async def test_connector_tokens_rotate(services: Services) -> None:
    t = await make_tenant(services)
    other = await make_tenant(services, "Other", ("other.example",))
    async with services.db.session() as s:
        new = await issue_token(s, t.id, "admin@acme.example")
        await s.commit()
        rows = await list_tokens(s, t.id)
        assert len(rows) == 2
        with pytest.raises(NotFound):
            await revoke_token(s, other.id, token_id(rows[0]), "admin@other.example")
        await revoke_token(s, t.id, token_id(rows[0]), "admin@acme.example")
        await s.commit()
        assert [token_id(r) for r in await list_tokens(s, t.id)] == [token_id(rows[1])]
        with pytest.raises(PermanentError):
            await revoke_token(s, t.id, token_id(rows[1]), "admin@acme.example")
        assert await tenant_by_connector_token(s, t.token, "192.0.2.1") is None  # revoked
        assert await s.get(type(rows[1]), rows[1].token_hash) is not None
        assert new not in {r.token_hash for r in await list_tokens(s, t.id)}  # hash only
