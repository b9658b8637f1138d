# ruff: noqa: F811 - the gateway fixtures are imported by name
"""Retention recorded by the pipeline (through the real gateway, both databases): the
tenant's archive retention, and a policy rule's ``retain`` when it asks for longer."""

from __future__ import annotations

from sqlalchemy import select, update

from archive.models import ArchiveEntry
from core.models import Tenant
from core.policy.model import parse_policy
from core.policy.store import set_policy
from core.services import Services
from gateway.pipeline.runner import process_pending
from tests.archive.test_archive_search import message, send
from tests.gateway.conftest import (  # noqa: F401 - fixtures
    asend,
    gateway,
    gw_services,
    gw_settings,
    sink,
    tenant,
)

DAY = 86400.0
POLICY = """
rules:
  - name: contracts
    when: {subject_contains: [contract]}
    action: encrypt
    retain: 10y
"""


async def test_policy_retain_and_tenant_retention(gateway, tenant, gw_services: Services):  # noqa: ANN001
    async with gw_services.db.session() as s:
        await set_policy(s, tenant.id, parse_policy(POLICY), "test")
        await s.execute(
            update(Tenant).where(Tenant.id == tenant.id).values(archive_retention_days=366)
        )
        await s.commit()
    await send(gateway, tenant, message("Signed contract", to="bob@partner.example"),
               ["bob@partner.example"])  # fmt: skip
    await send(gateway, tenant, message("Lunch on Friday", to="carol@partner.example"),
               ["carol@partner.example"])  # fmt: skip
    while await process_pending(gw_services):
        pass
    async with gw_services.db.session() as s:
        rows = (await s.execute(select(ArchiveEntry).order_by(ArchiveEntry.received_at))).scalars()
        kept = {r.decision: round((r.retain_until - r.received_at) / DAY) for r in rows}
    # the matching rule asks for 10 years (3653 days); the other keeps the tenant's year
    assert sorted(kept.values()) == [366, 3653]


async def test_shredding_a_portal_message_destroys_every_key_of_it(
    gateway,  # noqa: ANN001
    tenant,  # noqa: ANN001
    gw_services: Services,
) -> None:
    """A [secure] message through the pipeline: original, summary, portal meta and parts,
    notification; the sweep past its retention leaves no key of it and no object."""
    import time

    from archive.sweep import sweep
    from core.models import Message, SealedObject

    await send(gateway, tenant, message("[secure] Salary review", attachment=b"%PDF-1.4 x"),
               ["bob@partner.example"])  # fmt: skip
    while await process_pending(gw_services):
        pass
    async with gw_services.db.session() as s:
        objects = (await s.execute(select(SealedObject))).scalars().all()
        msg = (await s.execute(select(Message))).scalars().one()
    kinds = sorted(o.kind for o in objects)
    assert {"raw", "meta", "part", "outbound"} <= set(kinds), kinds
    assert msg.meta_object_id  # sealed for the portal

    early = await sweep(gw_services, at=time.time() + 91 * DAY)  # portal retention only
    assert early.portal_expired == 1 and early.entries_shredded == 0
    report = await sweep(gw_services, at=time.time() + 3000 * DAY)
    assert report.entries_shredded == 1 and report.problems == []
    async with gw_services.db.session() as s:
        left = (
            (await s.execute(select(SealedObject).where(SealedObject.wrapped_key.is_not(None))))
            .scalars()
            .all()
        )
    assert left == []
    assert not any(gw_services.store.exists(o.storage_name) for o in objects)


async def test_a_duplicate_journal_report_is_shredded_too(
    gateway,  # noqa: ANN001
    tenant,  # noqa: ANN001
    gw_services: Services,
) -> None:
    """The second copy of a journal report gets no archive entry; it is still shredded when
    the tenant's archive retention has passed, with the entry of the first."""
    import time

    from archive.sweep import sweep
    from core.models import SealedObject
    from tests.gateway.pipeline.test_journal import REPORT_LINES, journal_report, send_report

    original = message("Board minutes", to="bob@partner.example")
    await send_report(gateway, tenant, journal_report(original, message_id="<r1@x>"))
    await process_pending(gw_services)
    again = (*REPORT_LINES[:3], *reversed(REPORT_LINES[3:]))
    await send_report(gateway, tenant, journal_report(original, again, message_id="<r2@x>"))
    await process_pending(gw_services)

    assert (await sweep(gw_services, at=time.time() + 30 * DAY)).messages_shredded == 0
    report = await sweep(gw_services, at=time.time() + 3000 * DAY)
    assert report.entries_shredded == 1 and report.messages_shredded == 1
    assert report.problems == []
    async with gw_services.db.session() as s:
        objects = (await s.execute(select(SealedObject))).scalars().all()
    assert objects and all(o.wrapped_key is None for o in objects)
    assert not any(gw_services.store.exists(o.storage_name) for o in objects)
    assert (await sweep(gw_services, at=time.time() + 3000 * DAY)).messages_shredded == 0
