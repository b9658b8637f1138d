"""Key rotation: a tenant's KEK (``rotate_tenant``) and the root key (``rotate_root``).

Both only re-wrap keys; no sealed object's ciphertext is read or written. Every step is
committed in small batches and each row is updated on the condition that it still holds
the wrapped key that was read, so a run killed at any point leaves every key openable and
running the command again finishes the work (see docs/FORMAT.md, "Rotation").

Tenant KEK: a new version becomes active, every live data key of the tenant
(``sealed_objects.wrapped_key``) is re-wrapped under it, and each older version that no
data key refers to any more is marked retired (its wrapped KEK is kept, so a late writer
that still used it stays readable; the next rotation moves such a key on). A run finds an
unfinished rotation by an older version that is neither active nor retired, and finishes
it instead of starting another. Destroyed (crypto-shredded) keys stay destroyed.

Root: a file root gets a new key file (``root.key.next`` while the rotation runs, then
``root.key``; the previous one stays as ``root.key.old-<id>``); a KMS root re-encrypts
inside KMS (``ReEncrypt``) under the configured key, or under ``to``. Every tenant KEK and
the derivation secret are re-wrapped, so purpose keys (``derive``) do not change.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.exc import SQLAlchemyError

from core.aead import KEY_SIZE, data_key_aad, tenant_kek_aad, unwrap, wrap
from core.audit import audit
from core.config.settings import Settings
from core.db import Database
from core.errors import ConfigError, IntegrityError, NotFound, TransientError
from core.keyring import KeyRing
from core.models import SealedObject, TenantKey
from core.private_files import fsync_dir, read_private, write_private
from core.rootkey import kms_derivation_secret
from core.rootkey.file_root import FileRootKey, file_key_id
from core.rootkey.kms_root import KmsRootKey, kms_key_of
from core.rootkey.loader import open_root_key
from core.rootkey.protocol import DERIVE_AAD

Progress = Callable[[int, int], None]  # (done, total)
BATCH = 500
KEK_BATCH = 100


@dataclasses.dataclass
class RotationReport:
    scope: str  # tenant | root
    tenant_id: str | None = None
    version: int | None = None  # the tenant's active KEK version afterwards
    resumed: bool = False  # finished a rotation an earlier run left unfinished
    rewrapped: int = 0  # data keys (tenant) or tenant KEKs (root) re-wrapped
    failed: list[str] = dataclasses.field(default_factory=list)  # ids that did not open
    destroyed: int = 0  # crypto-shredded data keys of the tenant (left as they are)
    retired: list[int] = dataclasses.field(default_factory=list)
    root_key_id: str = ""
    previous_root_key_ids: list[str] = dataclasses.field(default_factory=list)
    kept_files: list[str] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _noop(done: int, total: int) -> None:
    pass


def _live(tenant_id: str) -> Any:
    return (
        (SealedObject.tenant_id == tenant_id)
        & SealedObject.wrapped_key.is_not(None)
        & SealedObject.destroyed_at.is_(None)
    )


def _db_error(exc: SQLAlchemyError) -> TransientError:
    return TransientError(f"database: {type(exc).__name__} during key rotation")


# --- tenant KEK ------------------------------------------------------------------------------


async def rotate_tenant(
    db: Database,
    keyring: KeyRing,
    tenant_id: str,
    progress: Progress = _noop,
    actor: str = "cli",
    batch: int = BATCH,
) -> RotationReport:
    """Make a new KEK version active and re-wrap every live data key of the tenant."""
    started = time.monotonic()
    report = RotationReport("tenant", tenant_id)
    try:
        async with db.session() as s:
            rows = (
                (await s.execute(select(TenantKey).where(TenantKey.tenant_id == tenant_id)))
                .scalars()
                .all()
            )
            if not rows:
                raise NotFound(f"tenant {tenant_id} has no key")
            active = max((r for r in rows if r.active), key=lambda r: r.version, default=None)
            unfinished = [
                r
                for r in rows
                if not r.active and r.retired_at is None and active and r.version < active.version
            ]
            if active is not None and unfinished:
                report.resumed = True
                target = active.version
            else:
                target = await keyring.create_tenant_key(s, tenant_id)
                await s.commit()
            keyring.forget_active(tenant_id)
            report.version = target
            target_kek = await keyring.kek(s, tenant_id, target)
            total = (
                await s.execute(
                    select(func.count())
                    .select_from(SealedObject)
                    .where(_live(tenant_id), SealedObject.kek_version != target)
                )
            ).scalar_one()
            report.destroyed = (
                await s.execute(
                    select(func.count())
                    .select_from(SealedObject)
                    .where(
                        SealedObject.tenant_id == tenant_id,
                        SealedObject.wrapped_key.is_(None) | SealedObject.destroyed_at.is_not(None),
                    )
                )
            ).scalar_one()
        progress(0, total)

        table = cast(Table, SealedObject.__table__)
        stmt = (
            update(table)
            .where(
                table.c.id == bindparam("b_id"),
                table.c.kek_version == bindparam("b_version"),
                table.c.wrapped_key == bindparam("b_old"),
                table.c.destroyed_at.is_(None),
            )
            .values(wrapped_key=bindparam("b_new"), kek_version=target)
        )
        last = ""
        done = 0
        while True:
            async with db.session() as s:
                page = (
                    await s.execute(
                        select(SealedObject.id, SealedObject.wrapped_key, SealedObject.kek_version)
                        .where(
                            _live(tenant_id),
                            SealedObject.kek_version != target,
                            SealedObject.id > last,
                        )
                        .order_by(SealedObject.id)
                        .limit(batch)
                    )
                ).all()
                if not page:
                    break
                params = []
                for object_id, wrapped, version in page:
                    if wrapped is None:
                        continue
                    aad = data_key_aad(tenant_id, object_id)
                    try:
                        old_kek = await keyring.kek(s, tenant_id, version)
                        dek = unwrap(old_kek, wrapped, aad)
                    except (IntegrityError, NotFound):
                        report.failed.append(object_id)
                        continue
                    params.append(
                        {
                            "b_id": object_id,
                            "b_version": version,
                            "b_old": wrapped,
                            "b_new": wrap(target_kek, dek, aad),
                        }
                    )
                if params:
                    await s.execute(stmt, params)
                await s.commit()
                last = page[-1][0]
                done += len(page)
                report.rewrapped += len(params)
                progress(min(done, total), total)

        async with db.session() as s:
            for row in (
                (
                    await s.execute(
                        select(TenantKey).where(
                            TenantKey.tenant_id == tenant_id,
                            TenantKey.version != target,
                            TenantKey.active.is_(False),
                            TenantKey.retired_at.is_(None),
                        )
                    )
                )
                .scalars()
                .all()
            ):
                refs = (
                    await s.execute(
                        select(func.count())
                        .select_from(SealedObject)
                        .where(_live(tenant_id), SealedObject.kek_version == row.version)
                    )
                ).scalar_one()
                if refs == 0:
                    row.retired_at = time.time()
                    report.retired.append(row.version)
            report.retired.sort()
            report.seconds = round(time.monotonic() - started, 3)
            await audit(
                s,
                tenant_id,
                actor,
                "key.rotate",
                f"kek-v{target}",
                version=target,
                resumed=report.resumed,
                rewrapped=report.rewrapped,
                failed=len(report.failed),
                retired=report.retired,
            )
            await s.commit()
    except SQLAlchemyError as exc:
        raise _db_error(exc) from None
    return report


# --- root ------------------------------------------------------------------------------------


async def _rewrap_kek_rows(
    db: Database,
    convert: Callable[[bytes, bytes], tuple[bytes, str]],
    needs: Callable[[str], bool],
    progress: Progress,
    report: RotationReport,
) -> None:
    """Re-wrap every tenant KEK row ``needs`` picks with ``convert(blob, aad)``."""
    async with db.session() as s:
        rows = (
            await s.execute(
                select(TenantKey.tenant_id, TenantKey.version, TenantKey.root_key_id).order_by(
                    TenantKey.tenant_id, TenantKey.version
                )
            )
        ).all()
    todo = [(t, v) for t, v, rid in rows if needs(rid)]
    progress(0, len(todo))
    table = cast(Table, TenantKey.__table__)
    stmt = (
        update(table)
        .where(
            table.c.tenant_id == bindparam("b_tenant"),
            table.c.version == bindparam("b_version"),
            table.c.wrapped_key == bindparam("b_old"),
        )
        .values(wrapped_key=bindparam("b_new"), root_key_id=bindparam("b_root"))
    )
    for start in range(0, len(todo), KEK_BATCH):
        chunk = todo[start : start + KEK_BATCH]
        async with db.session() as s:
            params = []
            for tenant_id, version in chunk:
                row = await s.get(TenantKey, (tenant_id, version))
                if row is None:
                    continue
                try:
                    new, rid = convert(row.wrapped_key, tenant_kek_aad(tenant_id, version))
                except IntegrityError:
                    report.failed.append(f"{tenant_id}/v{version}")
                    continue
                params.append(
                    {
                        "b_tenant": tenant_id,
                        "b_version": version,
                        "b_old": row.wrapped_key,
                        "b_new": new,
                        "b_root": rid,
                    }
                )
            if params:
                await s.execute(stmt, params)
            await s.commit()
        report.rewrapped += len(params)
        progress(start + len(chunk), len(todo))


async def _referenced_roots(db: Database) -> set[str]:
    async with db.session() as s:
        return set((await s.execute(select(TenantKey.root_key_id).distinct())).scalars())


async def rotate_root(
    db: Database,
    settings: Settings,
    to: str | None = None,
    progress: Progress = _noop,
    actor: str = "cli",
) -> RotationReport:
    """Rotate the root key (see the module docstring). ``to`` = ``aws-kms://...`` moves the
    root to that KMS key (from a file root or another KMS key)."""
    started = time.monotonic()
    report = RotationReport("root")
    try:
        if to is not None:
            await _to_kms(db, settings, to, progress, report)
        elif settings.root_key_path:
            await _rotate_file(db, Path(settings.root_key_path), progress, report)
        else:
            await _to_kms(db, settings, settings.root_key, progress, report)
        report.seconds = round(time.monotonic() - started, 3)
        async with db.session() as s:
            await audit(
                s,
                None,
                actor,
                "key.rotate_root",
                report.root_key_id[:64],
                root_key_id=report.root_key_id,
                previous=report.previous_root_key_ids,
                resumed=report.resumed,
                rewrapped=report.rewrapped,
                failed=len(report.failed),
            )
            await s.commit()
    except SQLAlchemyError as exc:
        raise _db_error(exc) from None
    return report


async def _rotate_file(
    db: Database, path: Path, progress: Progress, report: RotationReport
) -> None:
    current = FileRootKey.load(path)
    next_path = FileRootKey.next_path(path)
    referenced = await _referenced_roots(db)
    report.previous_root_key_ids = sorted(referenced - {current.key_id})
    if not next_path.exists() and referenced - {current.key_id}:
        # an earlier run switched root.key already: only KEKs are left to move
        report.resumed = True
        target_key = None
    else:
        report.resumed = next_path.exists()
        FileRootKey.create(next_path)
        target_key = read_private(next_path, "root key")
        if len(target_key) != KEY_SIZE:
            raise ConfigError(f"root key {next_path} must hold exactly 32 bytes")
        # the derivation secret, now wrapped by the next root (root.key.next is read too)
        write_private(
            FileRootKey.derive_path(path),
            wrap(target_key, current.derivation_secret, DERIVE_AAD),
        )
        report.previous_root_key_ids = sorted(referenced | {current.key_id})
    ring = FileRootKey.load(path)  # every root file: current, next, old-*
    final_key = target_key if target_key is not None else read_private(path, "root key")
    final_id = file_key_id(final_key)

    def convert(blob: bytes, aad: bytes) -> tuple[bytes, str]:
        return wrap(final_key, ring.unwrap(blob, aad), aad), final_id

    await _rewrap_kek_rows(db, convert, lambda rid: rid != final_id, progress, report)
    if target_key is not None:
        old = FileRootKey.old_path(path, current.key_id)
        if not old.exists():
            os.link(path, old)
        os.replace(next_path, path)
        fsync_dir(path.parent)
        # KEKs a running process wrapped with the previous root meanwhile
        ring = FileRootKey.load(path)
        await _rewrap_kek_rows(db, convert, lambda rid: rid != final_id, _noop, report)
    report.root_key_id = final_id
    report.previous_root_key_ids = [i for i in report.previous_root_key_ids if i != final_id]
    report.kept_files = sorted(str(p) for p in path.parent.glob(path.name + ".old-*"))


async def _to_kms(
    db: Database, settings: Settings, to: str, progress: Progress, report: RotationReport
) -> None:
    source = open_root_key(settings)
    dest = KmsRootKey(kms_key_of(to), endpoint_url=settings.kms_endpoint_url)
    dest_id = dest.key_id  # DescribeKey: missing or disabled → ConfigError now
    same_key = isinstance(source, KmsRootKey) and source.key_id == dest_id
    report.previous_root_key_ids = sorted((await _referenced_roots(db)) - {dest_id})

    def convert(blob: bytes, aad: bytes) -> tuple[bytes, str]:
        if blob[:1] == b"\x81" and isinstance(source, KmsRootKey):
            return source.rewrap(blob, aad, dest.key)
        return dest.wrap(source.unwrap(blob, aad), aad), dest_id

    # the derivation secret first: if it fails nothing has moved yet
    # (kept in the database for a KMS root, so every host sharing it sees the new wrapping)
    secret = await asyncio.to_thread(lambda: source.derivation_secret)
    blob = await kms_derivation_secret.read(db) if isinstance(source, KmsRootKey) else None
    if blob is not None:
        new_blob = (await asyncio.to_thread(convert, blob, DERIVE_AAD))[0]
    else:
        new_blob = await asyncio.to_thread(dest.wrap, secret, DERIVE_AAD)
    await kms_derivation_secret.save(db, new_blob, dest_id)
    # the same key (picking up KMS's newer key material) re-wraps everything; another key
    # skips what is already wrapped by it, so an interrupted run resumes
    await _rewrap_kek_rows(db, convert, lambda rid: same_key or rid != dest_id, progress, report)
    report.root_key_id = dest_id
