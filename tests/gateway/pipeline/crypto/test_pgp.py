"""PGP/MIME output is decrypted by the real ``gpg`` command line with the recipient's secret
key and equals the original, part by part, byte for byte; every failure is a TransientError
(the message waits), never clear text."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from core import recipient_keys
from core.accounts.tenants import get_tenant
from core.errors import TransientError
from core.models import Tenant
from core.services import Services
from gateway.pipeline.crypto import pgp
from tests.gateway.pipeline.crypto.messages import ATTACHMENT, leaves, parse, sample_message
from tests.helpers import keygen
from tests.helpers.keygen import PgpKeys
from tests.portal.conftest import make_tenant

pgp_keys = keygen.pgp_keys  # session fixture


async def _tenant(services: Services, keys: PgpKeys, *names: str, **fields: object) -> Tenant:
    tid = await make_tenant(services, "Acme", "acme.example", **fields)
    async with services.db.session() as s:
        for name in names:
            await recipient_keys.import_keys(s, tid, keys.public[name])
        await s.commit()
        tenant = await get_tenant(s, tid)
    assert tenant is not None
    return tenant


def _decrypt(keys: PgpKeys, message: bytes) -> bytes:
    outer = parse(message)
    assert outer.get_content_type() == "multipart/encrypted"
    assert outer.get_param("protocol") == "application/pgp-encrypted"
    version, body = outer.get_payload()
    assert version.get_content_type() == "application/pgp-encrypted"
    assert version.get_payload().strip() == "Version: 1"
    assert body.get_content_type() == "application/octet-stream"
    armored = body.get_payload(decode=True)
    assert armored.startswith(b"-----BEGIN PGP MESSAGE-----")
    return keys.gpg("--decrypt", data=armored).stdout


@pytest.mark.parametrize("who", ["bob", "ed"])
async def test_pgp_mime_decrypts_to_the_original(
    services: Services, pgp_keys: PgpKeys, who: str
) -> None:
    tenant = await _tenant(services, pgp_keys, "bob", "ed")
    raw = sample_message()
    out = await pgp.encrypt_pgp_mime(services, tenant, raw, f"{who}@recipient.test")

    for secret in (b"figures are attached", b"Quarterly", ATTACHMENT[:32], b"connector-token"):
        assert secret not in out
    outer = parse(out)
    original = parse(raw)
    for name in ("From", "To", "Cc", "Date", "Message-ID", "MIME-Version"):
        assert outer[name] == original[name]
    assert outer["Subject"] == "..."  # protected: the real one is inside
    assert outer["X-Sealmail-Tenant-Token"] is None

    inner = parse(_decrypt(pgp_keys, out))
    assert inner.get_param("protected-headers") == "v1"
    assert inner["Subject"] == "Quarterly figures, confidential"
    assert inner["From"] == original["From"] and inner["To"] == original["To"]
    assert inner.get_content_type() == original.get_content_type() == "multipart/mixed"
    assert inner["X-Sealmail-Tenant-Token"] is None
    assert leaves(inner) == leaves(original)
    assert any(data == ATTACHMENT for _t, _f, data in leaves(inner))


async def test_subject_left_visible_when_the_tenant_says_so(
    services: Services, pgp_keys: PgpKeys
) -> None:
    tenant = await _tenant(services, pgp_keys, "bob", pgp_protect_subject=False)
    raw = (
        b"From: a@acme.example\r\nTo: bob@recipient.test\r\nSubject: Hi there\r\n\r\nplain body\r\n"
    )
    out = await pgp.encrypt_pgp_mime(services, tenant, raw, "BOB@recipient.test")
    assert parse(out)["Subject"] == "Hi there"
    inner = parse(_decrypt(pgp_keys, out))
    assert inner.get_param("protected-headers") is None and inner["Subject"] is None
    assert inner.get_content_type() == "text/plain"
    assert inner.get_payload(decode=True) == b"plain body\r\n"


async def test_home_is_per_tenant_private_and_follows_the_directory(
    services: Services, pgp_keys: PgpKeys
) -> None:
    tenant = await _tenant(services, pgp_keys, "bob", "ed")
    await pgp.encrypt_pgp_mime(services, tenant, sample_message(), "bob@recipient.test")
    home = pgp.home_for(services.settings.data_dir, tenant.id)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    listed = keygen.gpg_in(home, "--with-colons", "--list-keys").stdout.decode()
    assert pgp_keys.fingerprint["ed"] in listed

    async with services.db.session() as s:
        await recipient_keys.remove_key(s, tenant.id, pgp_keys.fingerprint["ed"])
        await s.commit()
    with pytest.raises(TransientError, match="no usable OpenPGP key"):
        await pgp.encrypt_pgp_mime(services, tenant, sample_message(), "ed@recipient.test")
    await pgp.encrypt_pgp_mime(services, tenant, sample_message(), "bob@recipient.test")
    listed = keygen.gpg_in(home, "--with-colons", "--list-keys").stdout.decode()
    assert pgp_keys.fingerprint["ed"] not in listed and pgp_keys.fingerprint["bob"] in listed
    assert not list(home.glob("S.gpg-agent*"))  # --no-autostart: no agent was needed


async def test_key_not_from_the_directory_is_never_used(
    services: Services, pgp_keys: PgpKeys
) -> None:
    tenant = await _tenant(services, pgp_keys, "bob")
    await pgp.encrypt_pgp_mime(services, tenant, sample_message(), "bob@recipient.test")
    home = pgp.home_for(services.settings.data_dir, tenant.id)
    # someone slips a key into the home behind the directory's back
    keygen.gpg_in(home, "--no-autostart", "--import", data=pgp_keys.public["ed"])
    async with services.db.session() as s:
        rows = await recipient_keys.list_keys(s, tenant.id)
    keys = [(k.fingerprint, k.material) for k in rows]
    with pytest.raises(TransientError, match="could not encrypt"):
        pgp.encrypt_in_home(home, keys, pgp_keys.fingerprint["ed"], b"secret")


async def test_no_key_and_gpg_missing_are_transient(
    services: Services, pgp_keys: PgpKeys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = await _tenant(services, pgp_keys, "bob")
    with pytest.raises(TransientError, match="no usable OpenPGP key for nobody@"):
        await pgp.encrypt_pgp_mime(services, tenant, sample_message(), "nobody@recipient.test")
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(TransientError, match="gpg is not installed"):
        await pgp.encrypt_pgp_mime(services, tenant, sample_message(), "bob@recipient.test")


async def test_stop_agents_runs_gpgconf_per_home(services: Services, pgp_keys: PgpKeys) -> None:
    tenant = await _tenant(services, pgp_keys, "bob")
    await pgp.encrypt_pgp_mime(services, tenant, sample_message(), "bob@recipient.test")
    await pgp.stop_agents(services.settings.data_dir)
    await pgp.stop_agents("/nonexistent/dir")
