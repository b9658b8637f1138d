"""Retention, legal holds and the sweep (crypto-shredding), on both databases and, through
tests/archive/conftest.py, on both stores (local disk and a real S3 endpoint)."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import select

from archive import holds, index, retention, search
from archive.models import ArchiveEntry
from archive.sweep import sweep
from core.accounts.tenants import create_tenant
from core.errors import IntegrityError, NotFound, PermanentError
from core.hashing import sha256_hex
from core.models import AuditEvent, Message, SealedObject, Tenant
from core.portal_message import Part, PortalMessage
from core.services import Services

DAY = 86400.0
LONG_AGO = time.time() - 400 * DAY


async def make_tenant(svc: Services, name: str) -> str:
    async with svc.db.session() as s:
        creds = await create_tenant(s, svc.keyring, name, [f"{name.lower()}.example"])
        await s.commit()
    return creds.tenant_id


async def archived(
    svc: Services,
    tid: str,
    subject: str,
    *,
    sender: str = "alice@acme.example",
    retain_until: float | None = None,
    received_at: float = LONG_AGO,
    message_id: str | None = None,
) -> ArchiveEntry:
    """An archived original with its sealed summary and blind-index tokens."""
    raw = f"From: {sender}\r\nTo: bob@client.example\r\nSubject: {subject}\r\n\r\nbody\r\n"
    data = raw.encode()
    async with svc.db.session() as s:
        obj = await svc.vault.seal(s, tid, data, "raw")
        summary = index.Summary(
            sender=sender,
            to=["bob@client.example"],
            subject=subject,
            size=len(data),
            sha256=sha256_hex(data),
        )
        entry = await index.record(
            svc,
            s,
            tenant_id=tid,
            source=index.SOURCE_GATEWAY,
            message_id=message_id,
            object_id=obj.id,
            summary=summary,
            decisions=["portal"],
            received_at=received_at,
        )
        entry.retain_until = retain_until if retain_until is not None else time.time() - DAY
        await s.commit()
    return entry


def stored(svc: Services, name: str) -> bytes:
    with svc.store.open(name) as fh:
        return fh.read()


async def key_of(svc: Services, object_id: str) -> SealedObject:
    async with svc.db.session() as s:
        row = await s.get(SealedObject, object_id)
        assert row is not None
        return row


async def entry_row(svc: Services, entry_id: str) -> ArchiveEntry:
    async with svc.db.session() as s:
        row = await s.get(ArchiveEntry, entry_id)
        assert row is not None
        return row


async def read(svc: Services, tid: str, object_id: str) -> bytes:
    async with svc.db.session() as s:
        return await svc.vault.read(s, tid, object_id)


async def actions(svc: Services) -> list[str]:
    async with svc.db.session() as s:
        return list((await s.execute(select(AuditEvent.action))).scalars())


# --- retention dates --------------------------------------------------------------------


async def test_retention_from_settings_tenant_and_policy(services: Services) -> None:
    tid = await make_tenant(services, "Acme")
    settings = services.settings
    async with services.db.session() as s:
        tenant = await s.get(Tenant, tid)
        assert tenant is not None
        default = retention.archive_days(settings, tenant)
        assert default == 2557  # archive_retention 7y: never shorter than 7 calendar years
        assert retention.retain_until(settings, tenant, 1000.0) == 1000.0 + default * DAY
        changes = await retention.set_tenant_retention(
            s, tenant, "admin@acme.example", archive="10y", portal="30d"
        )
        assert changes == {"archive_retention_days": 3653, "portal_retention_days": 30}
        await s.commit()
        # a policy rule asking for longer wins; one asking for less never shortens
        assert retention.retain_until(settings, tenant, 0.0) == 3653 * DAY
        assert retention.retain_until(settings, tenant, 0.0, policy_days=5000) == 5000 * DAY
        assert retention.retain_until(settings, tenant, 0.0, policy_days=10) == 3653 * DAY
        assert retention.portal_expires_at(settings, tenant, 0.0) == 30 * DAY
        with pytest.raises(PermanentError, match="portal retention '3x'"):
            await retention.set_tenant_retention(s, tenant, "admin", portal="3x")
        await retention.set_tenant_retention(s, tenant, "admin", archive="", portal="")
        await s.commit()
        assert retention.archive_days(settings, tenant) == default
        assert retention.portal_days(settings, tenant) == 90
    assert "tenant.retention" in await actions(services)


# --- the sweep ----------------------------------------------------------------------------


async def test_sweep_shreds_and_a_copy_taken_before_cannot_be_decrypted(
    services: Services,
) -> None:
    tid = await make_tenant(services, "Acme")
    due = await archived(services, tid, "quarterly figures")
    kept = await archived(services, tid, "still kept", retain_until=time.time() + 30 * DAY)
    assert due.meta_object_id
    names = [due.object_id, due.meta_object_id]
    copy = {n: stored(services, n) for n in names}  # a backup of the store, taken now
    assert await read(services, tid, due.object_id)  # readable before the sweep

    report = await sweep(services)

    assert report.entries_shredded == 1 and report.keys_destroyed == 2
    assert report.objects_deleted == 2 and not report.problems
    assert (await entry_row(services, due.id)).shredded_at is not None
    for n in names:
        row = await key_of(services, n)
        assert row.wrapped_key is None and row.destroyed_at is not None
        assert not services.store.exists(n)
    # the backup is put back byte for byte: without the key it is noise
    for n, blob in copy.items():
        services.store.put(n, [blob])
        assert stored(services, n) == blob
        with pytest.raises(NotFound):
            await read(services, tid, n)
    # the entry still in retention is untouched and readable
    assert (await entry_row(services, kept.id)).shredded_at is None
    assert b"still kept" in await read(services, tid, kept.object_id)
    # idempotent: nothing more to do
    again = await sweep(services)
    assert again.entries_shredded == 0 and again.keys_destroyed == 0
    found = await actions(services)
    assert {"archive.shred.keys", "archive.shred", "archive.sweep"} <= set(found)
    async with services.db.session() as s:
        details = (await s.execute(select(AuditEvent.detail))).scalars().all()
    assert not any("quarterly" in d for d in details)


async def test_dry_run_changes_nothing(services: Services) -> None:
    tid = await make_tenant(services, "Acme")
    entry = await archived(services, tid, "due")
    report = await sweep(services, dry_run=True)
    assert report.entries_due == 1 and report.entries_shredded == 0
    assert (await key_of(services, entry.object_id)).wrapped_key is not None
    assert services.store.exists(entry.object_id)


@pytest.mark.parametrize("kind", ["tenant", "search", "message"])
async def test_a_legal_hold_keeps_object_and_key_until_released(
    services: Services, kind: str
) -> None:
    tid = await make_tenant(services, "Acme")
    other = await make_tenant(services, "Other")
    held = await archived(services, tid, "merger plans", sender="ceo@acme.example")
    free = await archived(services, tid, "lunch menu", sender="chef@acme.example")
    theirs = await archived(services, other, "merger plans", sender="ceo@other.example")
    async with services.db.session() as s:
        hold = await holds.place(
            services,
            s,
            tid,
            "officer@acme.example",
            kind,
            "Case 2026-17",
            "litigation",
            query=search.Query(subject="merger") if kind == "search" else None,
            message=held.id if kind == "message" else "",
        )
        await s.commit()
    assert hold.items == (0 if kind == "tenant" else 1)
    if kind == "search":
        assert hold.criteria_hash and "merger" not in json.dumps(holds.as_json(hold))

    report = await sweep(services)

    assert report.entries_held >= 1
    assert (await entry_row(services, held.id)).shredded_at is None
    assert (await key_of(services, held.object_id)).wrapped_key is not None
    assert b"merger plans" in await read(services, tid, held.object_id)
    # the other tenant's entry with the same subject is not held by this tenant's hold
    assert (await entry_row(services, theirs.id)).shredded_at is not None
    free_row = await entry_row(services, free.id)
    assert (free_row.shredded_at is None) == (kind == "tenant")

    async with services.db.session() as s:
        with pytest.raises(NotFound):
            await holds.release(s, other, hold.id, "someone@other.example")  # not theirs
        await holds.release(s, tid, hold.id, "officer@acme.example")
        await s.commit()
        with pytest.raises(PermanentError, match="already released"):
            await holds.release(s, tid, hold.id, "officer@acme.example")
    await sweep(services)
    assert (await entry_row(services, held.id)).shredded_at is not None
    assert (await key_of(services, held.object_id)).wrapped_key is None
    assert {"archive.hold.place", "archive.hold.release"} <= set(await actions(services))


async def test_hold_needs_what_it_holds(services: Services) -> None:
    tid = await make_tenant(services, "Acme")
    async with services.db.session() as s:
        with pytest.raises(NotFound):
            await holds.place(services, s, tid, "x", "message", "n", message="a_nothere")
        with pytest.raises(PermanentError, match="criterion"):
            await holds.place(services, s, tid, "x", "search", "n", query=search.Query())
        with pytest.raises(PermanentError, match="name"):
            await holds.place(services, s, tid, "x", "tenant", "  ")
        with pytest.raises(PermanentError, match="kind"):
            await holds.place(services, s, tid, "x", "everything", "n")


async def _portal_message(svc: Services, tid: str, received_at: float) -> tuple[str, list[str]]:
    """A message sealed for the portal (meta + text + attachment) with its archive entry."""
    async with svc.db.session() as s:
        raw = await svc.vault.seal(s, tid, b"Subject: x\r\n\r\nhello", "raw")
        text = await svc.vault.seal(s, tid, b"hello", "part")
        att = await svc.vault.seal(s, tid, b"%PDF-1.4 secret", "part")
        pm = PortalMessage(
            subject="x",
            sender="a@acme.example",
            sender_name="",
            to=("bob@client.example",),
            cc=(),
            date="",
            message_id_header="",
            text_object_id=text.id,
            html_object_id=None,
            attachments=(Part(att.id, "a.pdf", "application/pdf", 15, "0" * 64),),
        )
        meta = await svc.vault.seal(s, tid, pm.to_json(), "meta")
        s.add(
            Message(
                id="m_portal1",
                tenant_id=tid,
                mail_from="a@acme.example",
                raw_object_id=raw.id,
                meta_object_id=meta.id,
                state="processed",
                received_at=received_at,
            )
        )
        await s.commit()
    return raw.id, [meta.id, text.id, att.id]


async def test_portal_copy_expires_before_the_archive_copy(services: Services) -> None:
    tid = await make_tenant(services, "Acme")
    raw_id, portal_ids = await _portal_message(services, tid, time.time() - 100 * DAY)
    async with services.db.session() as s:
        entry = await index.record(
            services,
            s,
            tenant_id=tid,
            source=index.SOURCE_GATEWAY,
            message_id="m_portal1",
            object_id=raw_id,
            summary=index.Summary(subject="x"),
            decisions=["portal"],
            received_at=time.time() - 100 * DAY,
        )
        await s.commit()

    report = await sweep(services)  # portal_retention 90d has passed, archive's 7y not

    assert report.portal_expired == 1 and report.entries_shredded == 0
    async with services.db.session() as s:
        msg = await s.get(Message, "m_portal1")
        assert msg is not None and msg.portal_expired_at is not None
    for n in portal_ids:
        assert (await key_of(services, n)).wrapped_key is None
        assert not services.store.exists(n)
    assert await read(services, tid, raw_id) == b"Subject: x\r\n\r\nhello"
    assert (await entry_row(services, entry.id)).shredded_at is None
    assert "portal.expire" in await actions(services)


async def test_portal_copy_under_a_tenant_hold_stays(services: Services) -> None:
    tid = await make_tenant(services, "Acme")
    _raw, portal_ids = await _portal_message(services, tid, time.time() - 100 * DAY)
    async with services.db.session() as s:
        await holds.place(services, s, tid, "officer", "tenant", "everything")
        await s.commit()
    report = await sweep(services)
    assert report.portal_expired == 0 and report.portal_held == 1
    assert (await key_of(services, portal_ids[0])).wrapped_key is not None


async def test_a_damaged_object_of_another_entry_does_not_stop_the_sweep(
    services: Services,
) -> None:
    tid = await make_tenant(services, "Acme")
    first = await archived(services, tid, "one")
    second = await archived(services, tid, "two")
    async with services.db.session() as s:
        row = await s.get(ArchiveEntry, first.id)
        assert row is not None
        row.message_id = "m_missing"  # names a message that is not there: no harm
        await s.commit()
    report = await sweep(services)
    assert report.entries_shredded == 2
    for e in (first, second):
        with pytest.raises((NotFound, IntegrityError)):
            await read(services, tid, e.object_id)


async def test_a_stale_flag_does_not_let_a_held_entry_go(services: Services) -> None:
    """The sweep checks the holds themselves just before destroying keys, not only the
    ``legal_hold`` flag."""
    from sqlalchemy import update

    tid = await make_tenant(services, "Acme")
    entry = await archived(services, tid, "evidence")
    async with services.db.session() as s:
        await holds.place(services, s, tid, "officer", "message", "case", message=entry.id)
        await s.execute(update(ArchiveEntry).values(legal_hold=False))  # stale
        await s.commit()
    report = await sweep(services)
    assert report.entries_shredded == 0 and report.entries_held == 1
    assert (await key_of(services, entry.object_id)).wrapped_key is not None
