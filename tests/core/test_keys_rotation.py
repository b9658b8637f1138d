"""Key rotation (core/rotation.py) on both databases: a tenant's KEK and the root (file and
KMS). Re-wrapping never touches ciphertext; old objects keep opening; an interrupted run
leaves everything readable and the next run finishes; derived keys do not change."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest
from sqlalchemy import select, update

from core import rotation
from core.accounts.tenants import create_tenant
from core.aead import tenant_kek_aad, unwrap
from core.config.settings import Settings
from core.errors import NotFound
from core.models import AuditEvent, SealedObject, TenantKey
from core.rootkey.file_root import FileRootKey, file_key_id
from core.rootkey.kms_root import KmsRootKey
from core.rootkey.loader import open_root_key
from core.rootkey.protocol import RootKey
from core.services import Services
from tests.conftest import make_settings
from tests.core.test_keys_kms import new_kms_key
from tests.helpers.moto_server import MotoServer

PURPOSES = ("loop-stamp", "portal-csrf", "portal-code", "archive-index/t_x")


class Boom(Exception):
    """Stands in for a kill in the middle of a run."""


def _derived(root: RootKey) -> dict[str, bytes]:
    return {p: root.derive(p) for p in PURPOSES}


def _stored(svc: Services, rows: list[SealedObject]) -> dict[str, bytes]:
    out = {}
    for r in rows:
        with svc.store.open(r.storage_name) as fh:
            out[r.id] = fh.read()
    return out


async def _tenant(svc: Services, name: str) -> str:
    async with svc.db.session() as s:
        creds = await create_tenant(s, svc.keyring, name, [f"{name.lower()}.example"])
        await s.commit()
    return creds.tenant_id


async def _seal(svc: Services, tenant_id: str, n: int) -> list[SealedObject]:
    async with svc.db.session() as s:
        rows = [await svc.vault.seal(s, tenant_id, b"message %d" % i, "raw") for i in range(n)]
        await s.commit()
    return rows


async def _read_all(settings: Settings, tenant_id: str, rows: list[SealedObject]) -> None:
    """Open every object from a fresh process (nothing cached)."""
    svc = Services.open(settings)
    try:
        async with svc.db.session() as s:
            for i, r in enumerate(rows):
                assert await svc.vault.read(s, tenant_id, r.id) == b"message %d" % i
    finally:
        await svc.close()


async def _versions(svc: Services, tenant_id: str) -> dict[str, int]:
    async with svc.db.session() as s:
        rows = (
            await s.execute(
                select(SealedObject.id, SealedObject.kek_version).where(
                    SealedObject.tenant_id == tenant_id
                )
            )
        ).all()
    return dict(rows)  # type: ignore[arg-type]


# --- tenant KEK ------------------------------------------------------------------------------


async def test_tenant_rotation_rewraps_data_keys_not_ciphertext(
    settings: Settings, services: Services
) -> None:
    acme = await _tenant(services, "Acme")
    bravo = await _tenant(services, "Bravo")
    rows = await _seal(services, acme, 5)
    other = await _seal(services, bravo, 2)
    # one crypto-shredded object: its key must stay destroyed
    async with services.db.session() as s:
        await s.execute(
            update(SealedObject)
            .where(SealedObject.id == rows[4].id)
            .values(wrapped_key=None, destroyed_at=time.time())
        )
        await s.commit()
    live = rows[:4]
    before = _stored(services, rows + other)
    async with services.db.session() as s:
        wrapped_before = dict(
            (await s.execute(select(SealedObject.id, SealedObject.wrapped_key))).all()
        )

    seen: list[tuple[int, int]] = []
    report = await rotation.rotate_tenant(
        services.db, services.keyring, acme, progress=lambda d, t: seen.append((d, t))
    )
    assert (report.version, report.rewrapped, report.resumed) == (2, 4, False)
    assert report.retired == [1] and report.destroyed == 1 and report.failed == []
    assert seen[0] == (0, 4) and seen[-1] == (4, 4)

    # ciphertext untouched, data keys re-wrapped, the other tenant left alone
    assert _stored(services, rows + other) == before
    versions = await _versions(services, acme)
    assert {versions[r.id] for r in live} == {2}
    assert set((await _versions(services, bravo)).values()) == {1}
    async with services.db.session() as s:
        after = dict((await s.execute(select(SealedObject.id, SealedObject.wrapped_key))).all())
        assert all(after[r.id] != wrapped_before[r.id] for r in live)
        assert all(after[r.id] == wrapped_before[r.id] for r in other)
        assert after[rows[4].id] is None
        keyrows = {
            r.version: r
            for r in (await s.execute(select(TenantKey).where(TenantKey.tenant_id == acme)))
            .scalars()
            .all()
        }
        assert keyrows[2].active and not keyrows[1].active
        assert keyrows[1].retired_at is not None and keyrows[2].retired_at is None
        event = (
            await s.execute(select(AuditEvent).where(AuditEvent.action == "key.rotate"))
        ).scalar_one()
        assert event.tenant_id == acme and json.loads(event.detail)["rewrapped"] == 4

    # every object opens in a fresh process; the shredded one stays gone
    await _read_all(settings, acme, live)
    await _read_all(settings, bravo, other)
    fresh = Services.open(settings)
    try:
        async with fresh.db.session() as s:
            with pytest.raises(NotFound, match="destroyed"):
                await fresh.vault.read(s, acme, rows[4].id)
            new = await fresh.vault.seal(s, acme, b"after", "raw")
            assert new.kek_version == 2
    finally:
        await fresh.close()

    # a second rotation moves everything on to version 3 and retires 2
    again = await rotation.rotate_tenant(services.db, services.keyring, acme)
    assert (again.version, again.rewrapped, again.retired) == (3, 4, [2])
    await _read_all(settings, acme, live)


async def test_interrupted_tenant_rotation_resumes(settings: Settings, services: Services) -> None:
    acme = await _tenant(services, "Acme")
    rows = await _seal(services, acme, 7)
    before = _stored(services, rows)

    def die_after_first_batch(done: int, total: int) -> None:
        if done >= 3:
            raise Boom

    with pytest.raises(Boom):
        await rotation.rotate_tenant(
            services.db, services.keyring, acme, progress=die_after_first_batch, batch=3
        )
    versions = await _versions(services, acme)
    assert sorted(versions.values()) == [1, 1, 1, 1, 2, 2, 2]  # half-way
    await _read_all(settings, acme, rows)  # nothing unreadable in between

    report = await rotation.rotate_tenant(services.db, services.keyring, acme, batch=3)
    assert report.resumed and report.version == 2 and report.rewrapped == 4
    assert report.retired == [1]
    assert set((await _versions(services, acme)).values()) == {2}
    assert _stored(services, rows) == before
    await _read_all(settings, acme, rows)


async def test_rotating_an_unknown_tenant(services: Services) -> None:
    with pytest.raises(NotFound):
        await rotation.rotate_tenant(services.db, services.keyring, "t_nobody")


# --- file root -------------------------------------------------------------------------------


async def test_file_root_rotation(settings: Settings, services: Services) -> None:
    path = Path(settings.root_key_path or "")
    derived = _derived(services.root_key)
    acme, bravo = await _tenant(services, "Acme"), await _tenant(services, "Bravo")
    rows = {acme: await _seal(services, acme, 3), bravo: await _seal(services, bravo, 2)}
    old_key, old_id = path.read_bytes(), services.root_key.key_id

    report = await rotation.rotate_root(services.db, settings)
    assert report.rewrapped == 2 and not report.resumed and report.failed == []
    assert report.previous_root_key_ids == [old_id]
    assert path.read_bytes() != old_key and path.stat().st_mode & 0o077 == 0
    kept = FileRootKey.old_path(path, old_id)
    assert kept.read_bytes() == old_key and report.kept_files == [str(kept)]
    assert not FileRootKey.next_path(path).exists()
    new_id = file_key_id(path.read_bytes())
    assert report.root_key_id == new_id
    async with services.db.session() as s:
        assert set((await s.execute(select(TenantKey.root_key_id))).scalars()) == {new_id}
        # the KEKs are really wrapped by the new file now
        for row in (await s.execute(select(TenantKey))).scalars():
            unwrap(path.read_bytes(), row.wrapped_key, tenant_kek_aad(row.tenant_id, row.version))

    reopened = FileRootKey.load(path)
    assert reopened.key_id == new_id and _derived(reopened) == derived
    for t, objs in rows.items():
        await _read_all(settings, t, objs)

    # the old file is no longer needed to open anything
    kept.unlink()
    for t, objs in rows.items():
        await _read_all(settings, t, objs)
    # and a second rotation keeps the derived keys too
    await rotation.rotate_root(services.db, settings)
    assert _derived(FileRootKey.load(path)) == derived
    for t, objs in rows.items():
        await _read_all(settings, t, objs)


async def test_interrupted_file_root_rotation_resumes(
    settings: Settings, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = Path(settings.root_key_path or "")
    derived = _derived(services.root_key)
    tenants = [await _tenant(services, n) for n in ("Acme", "Bravo", "Charlie")]
    rows = {t: await _seal(services, t, 2) for t in tenants}
    monkeypatch.setattr(rotation, "KEK_BATCH", 1)

    def die(done: int, total: int) -> None:
        if done == 2:
            raise Boom

    with pytest.raises(Boom):
        await rotation.rotate_root(services.db, settings, progress=die)
    assert FileRootKey.next_path(path).exists()
    async with services.db.session() as s:
        assert len(set((await s.execute(select(TenantKey.root_key_id))).scalars())) == 2
    # in between: every KEK opens and the derived keys are the same
    assert _derived(FileRootKey.load(path)) == derived
    for t, objs in rows.items():
        await _read_all(settings, t, objs)

    report = await rotation.rotate_root(services.db, settings)
    assert report.resumed and report.rewrapped == 1
    assert not FileRootKey.next_path(path).exists()
    async with services.db.session() as s:
        ids = set((await s.execute(select(TenantKey.root_key_id))).scalars())
    assert ids == {file_key_id(path.read_bytes())}
    assert _derived(FileRootKey.load(path)) == derived
    for t, objs in rows.items():
        await _read_all(settings, t, objs)


# --- KMS root --------------------------------------------------------------------------------


async def test_kms_root_rotation_and_move_to_another_key(
    tmp_path: Path, db_url: str, moto_server: MotoServer
) -> None:
    first = new_kms_key(moto_server.endpoint)
    second = new_kms_key(moto_server.endpoint)
    settings = make_settings(
        tmp_path, db_url, root_key=f"aws-kms://{first}", kms_endpoint_url=moto_server.endpoint
    )
    svc = Services.open(settings)
    try:
        assert isinstance(svc.root_key, KmsRootKey)
        svc.root_key.create_derivation_secret()
        derived = _derived(svc.root_key)
        acme = await _tenant(svc, "Acme")
        rows = await _seal(svc, acme, 3)
        before = _stored(svc, rows)
        async with svc.db.session() as s:
            blob_before = (await s.execute(select(TenantKey.wrapped_key))).scalar_one()

        # same key: re-encrypted inside KMS (new ciphertext), still the same root id
        report = await rotation.rotate_root(svc.db, settings)
        assert report.rewrapped == 1 and report.root_key_id == "aws-kms:" + first
        async with svc.db.session() as s:
            assert (await s.execute(select(TenantKey.wrapped_key))).scalar_one() != blob_before
        await _read_all(settings, acme, rows)

        # to another key: every KEK and the derivation secret follow
        report = await rotation.rotate_root(svc.db, settings, to=f"aws-kms://{second}")
        assert report.root_key_id == "aws-kms:" + second
        assert report.previous_root_key_ids == ["aws-kms:" + first]
        moved = dataclasses.replace(settings, root_key=f"aws-kms://{second}")
        await _read_all(moved, acme, rows)
        root = open_root_key(moved)
        root.check()
        assert _derived(root) == derived
        assert _stored(svc, rows) == before
        # run again before the configuration names the new key (as after an
        # interruption): nothing is left to move
        again = await rotation.rotate_root(svc.db, settings, to=f"aws-kms://{second}")
        assert again.rewrapped == 0
    finally:
        await svc.close()


async def test_file_root_moves_to_kms(
    settings: Settings, services: Services, moto_server: MotoServer
) -> None:
    arn = new_kms_key(moto_server.endpoint)
    derived = _derived(services.root_key)
    acme = await _tenant(services, "Acme")
    rows = await _seal(services, acme, 2)
    report = await rotation.rotate_root(
        services.db,
        dataclasses.replace(settings, kms_endpoint_url=moto_server.endpoint),
        to=f"aws-kms://{arn}",
    )
    assert report.rewrapped == 1 and report.root_key_id == "aws-kms:" + arn
    moved = dataclasses.replace(
        settings, root_key=f"aws-kms://{arn}", kms_endpoint_url=moto_server.endpoint
    )
    await _read_all(moved, acme, rows)
    assert _derived(open_root_key(moved)) == derived


async def test_a_running_process_follows_the_rotation(
    settings: Settings, services: Services
) -> None:
    """A process that cached the old active version keeps using it for up to its TTL; what
    it wraps then stays readable (the retired KEK is kept) and the next rotation moves it."""
    acme = await _tenant(services, "Acme")
    running = Services.open(settings)  # e.g. the gateway, with v1 cached as active
    try:
        first = await _seal(running, acme, 1)
        assert first[0].kek_version == 1
        report = await rotation.rotate_tenant(services.db, services.keyring, acme)
        assert report.version == 2 and report.retired == [1]
        late = await _seal(running, acme, 1)  # within the TTL: still v1
        assert late[0].kek_version == 1
        running.keyring.active_ttl = 0  # the TTL has passed
        assert (await _seal(running, acme, 1))[0].kek_version == 2
    finally:
        await running.close()
    await _read_all(settings, acme, late)
    again = await rotation.rotate_tenant(services.db, services.keyring, acme)
    assert again.version == 3 and again.rewrapped == 3
    assert set((await _versions(services, acme)).values()) == {3}
    await _read_all(settings, acme, late)


async def test_a_running_process_follows_a_file_root_rotation(
    settings: Settings, services: Services
) -> None:
    """A process started before ``key rotate`` (root) reads the new root file when it meets
    a KEK it cannot open, and wraps new KEKs with the new root, even once the old file is
    gone."""
    path = Path(settings.root_key_path or "")
    acme = await _tenant(services, "Acme")
    objs = await _seal(services, acme, 2)
    running = Services.open(settings)  # loaded the old root; has not opened Acme's KEK
    try:
        old_id = running.root_key.key_id
        await rotation.rotate_root(services.db, settings)
        FileRootKey.old_path(path, old_id).unlink()  # nothing refers to it any more
        async with running.db.session() as s:
            for o in objs:
                assert await running.vault.read(s, acme, o.id)
        bravo = await _tenant(running, "Bravo")
        assert running.root_key.key_id == file_key_id(path.read_bytes()) != old_id
    finally:
        await running.close()
    async with services.db.session() as s:
        row = (await s.execute(select(TenantKey).where(TenantKey.tenant_id == bravo))).scalar_one()
    assert row.root_key_id == file_key_id(path.read_bytes())
    await _read_all(settings, bravo, await _seal(services, bravo, 1))
