"""A KMS root's derivation secret lives in the database (migration 0009), wrapped by KMS:
hosts that share the database derive the same purpose keys with no file copied between
them; an older install's ``keys/kms-root.derive`` is imported; root rotation re-wraps it."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select

from core import rotation
from core.accounts.tenants import create_tenant
from core.config.settings import Settings
from core.db import Database
from core.errors import ConfigError
from core.models import KmsDerivationSecret
from core.private_files import write_private
from core.rootkey.kms_root import KmsRootKey
from core.rootkey.loader import kms_derive_path, open_root_key
from core.rootkey.protocol import DERIVE_AAD
from core.services import Services
from sealmail.cli.main import cli
from sealmail.workdir import ensure_kms_derivation_secret
from tests.conftest import make_settings
from tests.core.test_keys_kms import kms_client, new_kms_key
from tests.helpers.moto_server import MotoServer


def _host(tmp_path: Path, name: str, db_url: str, endpoint: str, key: str) -> Settings:
    """One host: its own data dir, the shared database, the KMS root."""
    return make_settings(
        tmp_path / name, db_url, root_key=f"aws-kms://{key}", kms_endpoint_url=endpoint
    )


async def _ensure(settings: Settings) -> str | None:
    """``sealmail migrate``'s step (it runs its own event loop)."""
    return await asyncio.to_thread(ensure_kms_derivation_secret, settings)


async def _rows(db_url: str) -> list[KmsDerivationSecret]:
    db = Database(db_url)
    try:
        async with db.session() as s:
            return list((await s.execute(select(KmsDerivationSecret))).scalars())
    finally:
        await db.dispose()


def _hkdf(secret: bytes, purpose: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"sealmail/" + purpose.encode()
    ).derive(secret)


async def test_two_hosts_share_the_secret_through_the_database(
    tmp_path: Path, db_url: str, moto_server: MotoServer
) -> None:
    arn = new_kms_key(moto_server.endpoint, alias=f"alias/sealmail-hosts-{tmp_path.name}")
    a = _host(tmp_path, "a", db_url, moto_server.endpoint, f"alias/sealmail-hosts-{tmp_path.name}")
    b = _host(tmp_path, "b", db_url, moto_server.endpoint, arn)
    assert await _rows(db_url) == []
    # what 'sealmail migrate' / 'init' does on host a
    assert await _ensure(a) == (
        f"derivation secret in the database (wrapped by aws-kms://alias/sealmail-hosts-{tmp_path.name})"
    )
    assert await _ensure(a) is None  # never replaced
    assert await _ensure(b) is None
    [row] = await _rows(db_url)
    assert row.root_key_id == "aws-kms:" + arn and row.wrapped_secret[:1] == b"\x81"
    # no file anywhere in either data dir
    for host in (a, b):
        assert not kms_derive_path(host.data_dir).exists()
    # the blob opens with KMS alone (docs/FORMAT.md) and is the HKDF input of both hosts
    secret = kms_client(moto_server.endpoint).decrypt(
        CiphertextBlob=row.wrapped_secret[1:],
        EncryptionContext={"sealmail-aad": DERIVE_AAD.hex()},
    )["Plaintext"]
    assert secret not in row.wrapped_secret
    root_a, root_b = open_root_key(a), open_root_key(b)
    root_b.check()  # what serve does at start
    for purpose in ("loop-stamp", "portal-csrf", "index/t_1"):
        assert root_a.derive(purpose) == root_b.derive(purpose) == _hkdf(secret, purpose)

    # a tenant created on host a is sealed and opened on host b (one archive store)
    svc_a = Services.open(a)
    svc_b = Services.open(dataclasses.replace(b, archive_url=a.archive_url))
    try:
        async with svc_a.db.session() as s:
            creds = await create_tenant(s, svc_a.keyring, "Acme", ["acme.example"])
            sealed = await svc_a.vault.seal(s, creds.tenant_id, b"from host a", "raw")
            await s.commit()
        async with svc_b.db.session() as s:
            assert await svc_b.vault.read(s, creds.tenant_id, sealed.id) == b"from host a"
        assert svc_a.keyring.stamp_key == svc_b.keyring.stamp_key
    finally:
        await svc_a.close()
        await svc_b.close()


async def test_an_older_install_s_file_is_imported(
    tmp_path: Path, db_url: str, moto_server: MotoServer
) -> None:
    arn = new_kms_key(moto_server.endpoint)
    old = _host(tmp_path, "old", db_url, moto_server.endpoint, arn)
    legacy = kms_derive_path(old.data_dir)
    before = KmsRootKey(arn, endpoint_url=moto_server.endpoint, derive_path=legacy)
    assert before.create_derivation_secret()  # what an earlier 'sealmail init' wrote
    derived = before.derive("loop-stamp")
    # an upgraded host that runs before 'migrate' imports the file on first use
    assert open_root_key(old).derive("loop-stamp") == derived
    [row] = await _rows(db_url)
    assert row.wrapped_secret == legacy.read_bytes()
    # a new host with no file derives the same
    new = _host(tmp_path, "new", db_url, moto_server.endpoint, arn)
    assert open_root_key(new).derive("loop-stamp") == derived


async def test_migrate_imports_the_file_and_a_damaged_file_is_refused(
    tmp_path: Path, db_url: str, moto_server: MotoServer
) -> None:
    arn = new_kms_key(moto_server.endpoint)
    host = _host(tmp_path, "h", db_url, moto_server.endpoint, arn)
    legacy = kms_derive_path(host.data_dir)
    # a damaged file: refused, nothing written
    legacy.parent.mkdir(parents=True, exist_ok=True)
    write_private(legacy, b"\x81" + bytes(200))
    with pytest.raises(ConfigError, match="does not open with"):
        await _ensure(host)
    assert await _rows(db_url) == []
    legacy.unlink()
    KmsRootKey(
        arn, endpoint_url=moto_server.endpoint, derive_path=legacy
    ).create_derivation_secret()
    assert "imported from" in (await _ensure(host) or "")
    [row] = await _rows(db_url)
    assert row.wrapped_secret == legacy.read_bytes() and row.root_key_id == "aws-kms:" + arn


async def test_no_secret_anywhere_is_a_clear_error(
    tmp_path: Path, db_url: str, moto_server: MotoServer
) -> None:
    host = _host(tmp_path, "h", db_url, moto_server.endpoint, new_kms_key(moto_server.endpoint))
    with pytest.raises(ConfigError, match="run 'sealmail migrate'"):
        open_root_key(host).check()


async def test_root_rotation_rewraps_the_row(
    tmp_path: Path, db_url: str, moto_server: MotoServer
) -> None:
    first, second = new_kms_key(moto_server.endpoint), new_kms_key(moto_server.endpoint)
    a = _host(tmp_path, "a", db_url, moto_server.endpoint, first)
    await _ensure(a)
    derived = open_root_key(a).derive("loop-stamp")
    [before] = await _rows(db_url)
    db = Database(db_url)
    try:
        report = await rotation.rotate_root(db, a)  # same key: re-encrypted in KMS
        assert report.root_key_id == "aws-kms:" + first
        [same] = await _rows(db_url)
        assert same.wrapped_secret != before.wrapped_secret
        await rotation.rotate_root(db, a, to=f"aws-kms://{second}")
    finally:
        await db.dispose()
    [after] = await _rows(db_url)
    assert after.root_key_id == "aws-kms:" + second
    # wrapped by the second key now (KMS says so), and host b, configured with the new key
    # only, derives the same keys
    out = kms_client(moto_server.endpoint).decrypt(
        CiphertextBlob=after.wrapped_secret[1:],
        EncryptionContext={"sealmail-aad": DERIVE_AAD.hex()},
    )
    assert out["KeyId"] == second
    b = _host(tmp_path, "b", db_url, moto_server.endpoint, second)
    assert open_root_key(b).derive("loop-stamp") == derived
    assert not kms_derive_path(a.data_dir).exists()


def test_migrate_command_creates_the_secret(tmp_path: Path, moto_server: MotoServer) -> None:
    arn = new_kms_key(moto_server.endpoint)
    wd = tmp_path / "w"
    wd.mkdir()
    (wd / "sealmail.toml").write_text(
        f'data_dir = "./var"\nroot_key = "aws-kms://{arn}"\n'
        f'kms_endpoint_url = "{moto_server.endpoint}"\n'
    )
    runner = CliRunner()
    config = str(wd / "sealmail.toml")
    first = runner.invoke(cli, ["migrate", "--config", config])
    assert first.exit_code == 0, first.output
    assert "created derivation secret in the database" in first.output
    second = runner.invoke(cli, ["migrate", "--config", config])
    assert second.exit_code == 0 and "derivation secret" not in second.output
    settings = dataclasses.replace(
        make_settings(tmp_path / "x", f"sqlite:///{wd}/var/sealmail.db"),
        root_key=f"aws-kms://{arn}",
        kms_endpoint_url=moto_server.endpoint,
    )
    open_root_key(settings).check()


async def test_migration_0009_matches_the_model(db_url: str) -> None:
    """The hand-written migration creates exactly what the model declares (both databases)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from core.models import Base

    db = Database(db_url)
    try:
        async with db.engine.connect() as conn:

            def diff(sync_conn):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN202
                ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True})
                return compare_metadata(ctx, Base.metadata)

            changes = await conn.run_sync(diff)
    finally:
        await db.dispose()
    mine = [c for c in changes if "kms_derivation_secrets" in repr(c)]
    assert mine == []
