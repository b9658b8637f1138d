"""The root key in AWS KMS (moto's KMS on loopback): wrap/unwrap with the associated data in
the encryption context, the derivation secret, error translation, and tenant KEKs cached so
KMS is not called per message."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import boto3
import pytest
from sqlalchemy import select

from core.accounts.tenants import create_tenant
from core.aead import new_key, tenant_kek_aad, wrap
from core.errors import ConfigError, IntegrityError, TransientError
from core.models import TenantKey
from core.rootkey.kms_root import KmsRootKey
from core.rootkey.loader import open_root_key
from core.services import Services
from tests.conftest import make_settings
from tests.helpers.moto_server import MotoServer, _free_port


def kms_client(endpoint: str):  # noqa: ANN201
    return boto3.client("kms", endpoint_url=endpoint, region_name="us-east-1")


def new_kms_key(endpoint: str, alias: str | None = None) -> str:
    """A fresh symmetric key in moto; returns its ARN (and names it ``alias`` if given)."""
    client = kms_client(endpoint)
    meta = client.create_key(Description="sealmail test root")["KeyMetadata"]
    if alias:
        client.create_alias(AliasName=alias, TargetKeyId=meta["KeyId"])
    return str(meta["Arn"])


def kms_root(endpoint: str, key: str, tmp_path: Path) -> KmsRootKey:
    return KmsRootKey(key, endpoint_url=endpoint, derive_path=tmp_path / "keys" / "kms-root.derive")


def test_wrap_unwrap_round_trip_and_aad_binding(moto_server: MotoServer, tmp_path: Path) -> None:
    arn = new_kms_key(moto_server.endpoint)
    root = kms_root(moto_server.endpoint, arn, tmp_path)
    kek = new_key()
    aad = tenant_kek_aad("t_a", 1)
    blob = root.wrap(kek, aad)
    assert blob[:1] == b"\x81" and kek not in blob
    assert root.unwrap(blob, aad) == kek
    assert root.key_id == "aws-kms:" + arn
    # bound to tenant and version: moved elsewhere it does not open
    for other in (tenant_kek_aad("t_b", 1), tenant_kek_aad("t_a", 2)):
        with pytest.raises(IntegrityError):
            root.unwrap(blob, other)
    with pytest.raises(IntegrityError):
        root.unwrap(blob[:-1] + bytes([blob[-1] ^ 1]), aad)
    # a file-root blob is not a KMS ciphertext
    with pytest.raises(IntegrityError, match="not a KMS ciphertext"):
        root.unwrap(wrap(new_key(), kek, aad), aad)


def test_alias_names_the_same_key(moto_server: MotoServer, tmp_path: Path) -> None:
    arn = new_kms_key(moto_server.endpoint, alias="alias/sealmail-alias-test")
    by_alias = kms_root(moto_server.endpoint, "alias/sealmail-alias-test", tmp_path)
    by_arn = kms_root(moto_server.endpoint, arn, tmp_path)
    aad = tenant_kek_aad("t_a", 1)
    kek = new_key()
    assert by_arn.unwrap(by_alias.wrap(kek, aad), aad) == kek
    assert by_alias.key_id == by_arn.key_id == "aws-kms:" + arn


def test_derivation_secret_is_stable_and_wrapped(moto_server: MotoServer, tmp_path: Path) -> None:
    arn = new_kms_key(moto_server.endpoint)
    root = kms_root(moto_server.endpoint, arn, tmp_path)
    with pytest.raises(ConfigError, match="sealmail init"):
        root.derive("loop-stamp")
    assert root.create_derivation_secret() is True
    assert root.create_derivation_secret() is False  # never replaced
    stamp = root.derive("loop-stamp")
    assert len(stamp) == 32 and stamp != root.derive("archive-index/t_a")
    again = kms_root(moto_server.endpoint, arn, tmp_path)  # another process
    again.check()
    assert again.derive("loop-stamp") == stamp
    assert (tmp_path / "keys" / "kms-root.derive").stat().st_mode & 0o077 == 0
    # the file alone is useless: it is a KMS ciphertext, not the secret
    assert root.derivation_secret not in (tmp_path / "keys" / "kms-root.derive").read_bytes()


def test_missing_or_disabled_key_is_a_config_error(moto_server: MotoServer, tmp_path: Path) -> None:
    missing = kms_root(moto_server.endpoint, "alias/sealmail-no-such-key", tmp_path)
    with pytest.raises(ConfigError, match=r"aws-kms://alias/sealmail-no-such-key: NotFound"):
        missing.check()
    with pytest.raises(ConfigError, match="NotFound"):
        missing.wrap(new_key(), b"x")

    arn = new_kms_key(moto_server.endpoint)
    kms_client(moto_server.endpoint).disable_key(KeyId=arn.rsplit("/", 1)[-1])
    with pytest.raises(ConfigError, match="is Disabled in KMS"):
        kms_root(moto_server.endpoint, arn, tmp_path).check()

    client = kms_client(moto_server.endpoint)
    sign_key = client.create_key(KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")["KeyMetadata"]
    with pytest.raises(ConfigError, match="not an encryption key"):
        kms_root(moto_server.endpoint, sign_key["Arn"], tmp_path).check()


def test_kms_unreachable_is_transient(tmp_path: Path) -> None:
    root = KmsRootKey(
        "alias/sealmail", endpoint_url=f"http://127.0.0.1:{_free_port()}", derive_path=tmp_path
    )
    with pytest.raises(TransientError, match="KMS unreachable"):
        root.wrap(new_key(), b"aad")
    with pytest.raises(TransientError):
        root.check()


def _kms_settings(tmp_path: Path, db_url: str, endpoint: str, key: str):  # noqa: ANN202
    return make_settings(tmp_path, db_url, root_key=f"aws-kms://{key}", kms_endpoint_url=endpoint)


async def test_services_with_kms_root_cache_keks(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tenant KEKs are wrapped by KMS; once unwrapped they are cached: with KMS gone, mail
    of a tenant already seen is still sealed and opened, and a new tenant fails transiently."""
    for k, v in MotoServer.ENV.items():
        monkeypatch.setenv(k, v)
    with MotoServer() as kms:
        arn = new_kms_key(kms.endpoint, alias="alias/sealmail-root")
        settings = _kms_settings(tmp_path, db_url, kms.endpoint, "alias/sealmail-root")
        svc = Services.open(settings)
        try:
            assert isinstance(svc.root_key, KmsRootKey)
            assert svc.root_key.create_derivation_secret()
            svc.root_key.check()
            async with svc.db.session() as s:
                creds = await create_tenant(s, svc.keyring, "Acme", ["acme.example"])
                await s.commit()
            async with svc.db.session() as s:
                row = (await s.execute(select(TenantKey))).scalars().one()
                assert row.root_key_id == "aws-kms:" + arn
                assert row.wrapped_key[:1] == b"\x81"
                first = await svc.vault.seal(s, creds.tenant_id, b"first message", "raw")
                await s.commit()
            # a second process: nothing cached, reads the KEK through KMS once
            other = Services.open(settings)
            try:
                other.root_key.check()  # what serve does at start
                async with other.db.session() as s:
                    assert await other.vault.read(s, creds.tenant_id, first.id) == b"first message"
                kms.stop()  # KMS is gone from here on
                async with other.db.session() as s:
                    for i in range(20):
                        obj = await other.vault.seal(s, creds.tenant_id, b"m%d" % i, "raw")
                        assert await other.vault.read(s, creds.tenant_id, obj.id) == b"m%d" % i
                    await s.commit()
                    assert other.keyring.stamp_key == svc.keyring.stamp_key
                async with other.db.session() as s:
                    with pytest.raises(TransientError):
                        await create_tenant(s, other.keyring, "Bravo", ["bravo.example"])
            finally:
                await other.close()
        finally:
            await svc.close()


def test_settings_name_the_kms_root(tmp_path: Path) -> None:
    s = make_settings(
        tmp_path,
        "sqlite:///" + str(tmp_path / "x.db"),
        root_key="aws-kms://arn:aws:kms:eu-west-1:111122223333:key/abcd",
        kms_endpoint_url="http://127.0.0.1:9",
    )
    root = open_root_key(s)
    assert isinstance(root, KmsRootKey)
    assert root.region == "eu-west-1"
    assert root.derive_file == Path(s.data_dir) / "keys" / "kms-root.derive"
    assert dataclasses.replace(s, root_key="s3://x").root_key == "s3://x"
    with pytest.raises(ConfigError, match="expected file:// or aws-kms://"):
        open_root_key(dataclasses.replace(s, root_key="s3://x"))


def test_kms_blobs_follow_format_md(moto_server: MotoServer, tmp_path: Path) -> None:
    """Opened with nothing but boto3 and HKDF, as docs/FORMAT.md describes them."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    arn = new_kms_key(moto_server.endpoint)
    root = kms_root(moto_server.endpoint, arn, tmp_path)
    client = kms_client(moto_server.endpoint)
    kek = new_key()
    blob = root.wrap(kek, b"sealmail/kek/v1\x00t_abc\x003")
    assert blob[0] == 0x81
    out = client.decrypt(
        CiphertextBlob=blob[1:],
        EncryptionContext={"sealmail-aad": b"sealmail/kek/v1\x00t_abc\x003".hex()},
    )
    assert out["Plaintext"] == kek and out["KeyId"] == arn

    root.create_derivation_secret()
    stored = (tmp_path / "keys" / "kms-root.derive").read_bytes()
    secret = client.decrypt(
        CiphertextBlob=stored[1:],
        EncryptionContext={"sealmail-aad": b"sealmail/derive/v1".hex()},
    )["Plaintext"]
    expected = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"sealmail/loop-stamp"
    ).derive(secret)
    assert root.derive("loop-stamp") == expected


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("ThrottlingException", 400, TransientError),
        ("KMSInternalException", 500, TransientError),
        ("SomethingNew", 503, TransientError),
        ("AccessDeniedException", 400, ConfigError),
        ("DisabledException", 400, ConfigError),
        ("KMSInvalidStateException", 400, ConfigError),
        ("InvalidCiphertextException", 400, IntegrityError),
    ],
)
def test_kms_errors_are_translated(code: str, status: int, error: type[Exception]) -> None:
    from botocore.exceptions import ClientError

    class Failing:
        def decrypt(self, **kwargs: object) -> None:
            raise ClientError(
                {
                    "Error": {"Code": code, "Message": "details\nmore"},
                    "ResponseMetadata": {"HTTPStatusCode": status},
                },
                "Decrypt",
            )

    root = KmsRootKey("alias/sealmail", client=Failing())
    with pytest.raises(error) as info:
        root.unwrap(b"\x81" + b"x" * 40, b"aad")
    assert "\n" not in str(info.value) and "aws-kms://alias/sealmail" in str(info.value)
