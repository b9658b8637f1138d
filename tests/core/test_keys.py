"""Key wrapping and the root key file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from core.aead import KEY_SIZE, data_key_aad, new_key, tenant_kek_aad, unwrap, wrap
from core.errors import ConfigError, IntegrityError
from core.private_files import write_private
from core.rootkey.file_root import FileRootKey, file_key_id
from core.rootkey.kms_root import KmsRootKey
from core.rootkey.loader import load_root_key
from core.rootkey.protocol import DERIVE_AAD


def test_wrap_round_trip_and_format() -> None:
    kek, dek = new_key(), new_key()
    assert len(kek) == len(dek) == KEY_SIZE and kek != dek
    aad = data_key_aad("t_a", "o_b")
    blob = wrap(kek, dek, aad)
    assert len(blob) == 1 + 12 + 32 + 16 and blob[0] == 1
    assert unwrap(kek, blob, aad) == dek
    assert wrap(kek, dek, aad) != blob  # random nonce


def test_unwrap_with_the_wrong_context_fails() -> None:
    kek, dek = new_key(), new_key()
    blob = wrap(kek, dek, data_key_aad("t_a", "o_b"))
    for aad in (
        data_key_aad("t_a", "o_c"),
        data_key_aad("t_x", "o_b"),
        tenant_kek_aad("t_a", 1),
        b"",
    ):
        with pytest.raises(IntegrityError):
            unwrap(kek, blob, aad)
    with pytest.raises(IntegrityError):
        unwrap(new_key(), blob, data_key_aad("t_a", "o_b"))


@pytest.mark.parametrize(
    "mangle",
    [
        lambda b: b"\x02" + b[1:],
        lambda b: b[:20],
        lambda b: b[:-1] + bytes([b[-1] ^ 1]),
        lambda b: b[:5] + bytes([b[5] ^ 0x80]) + b[6:],
    ],
)
def test_damaged_wrapped_keys_fail(mangle) -> None:  # noqa: ANN001
    kek = new_key()
    blob = wrap(kek, new_key(), b"ctx")
    with pytest.raises(IntegrityError):
        unwrap(kek, mangle(blob), b"ctx")


def test_aad_strings_are_distinct_per_purpose_and_version() -> None:
    assert tenant_kek_aad("t_a", 1) == b"sealmail/kek/v1\x00t_a\x001"
    assert data_key_aad("t_a", "o_b") == b"sealmail/dek/v1\x00t_a\x00o_b"
    assert tenant_kek_aad("t_a", 1) != tenant_kek_aad("t_a", 2)


def test_root_key_file_is_created_private_and_never_overwritten(tmp_path: Path) -> None:
    old = os.umask(0)  # the code must not rely on a friendly umask
    try:
        path = tmp_path / "keys" / "root.key"
        assert FileRootKey.create(path) is True
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    first = path.read_bytes()
    assert len(first) == 32
    assert FileRootKey.create(path) is False
    assert path.read_bytes() == first


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644, 0o610])
def test_root_key_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "root.key"
    FileRootKey.create(path)
    path.chmod(mode)
    with pytest.raises(ConfigError, match="chmod 600"):
        FileRootKey.load(path)
    path.chmod(0o600)
    assert FileRootKey.load(path).key_id.startswith("file:")


def test_root_key_load_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="sealmail init"):
        FileRootKey.load(tmp_path / "absent.key")
    short = tmp_path / "short.key"
    short.write_bytes(b"x" * 31)
    short.chmod(0o600)
    with pytest.raises(ConfigError, match="32 bytes"):
        FileRootKey.load(short)
    with pytest.raises(ConfigError, match="key id"):
        load_root_key("aws-kms://")
    # a KMS root is only named at load: no network until it is used
    kms = load_root_key("aws-kms://alias/sealmail", kms_endpoint_url="http://127.0.0.1:9")
    assert isinstance(kms, KmsRootKey) and repr(kms) == "KmsRootKey(aws-kms://alias/sealmail)"
    with pytest.raises(ConfigError):
        load_root_key(str(short))


def test_root_key_wraps_derives_and_hides_itself(tmp_path: Path) -> None:
    path = tmp_path / "root.key"
    FileRootKey.create(path)
    root = load_root_key(f"file://{path}")
    again = FileRootKey.load(path)
    assert root.key_id == again.key_id
    kek = new_key()
    blob = root.wrap(kek, tenant_kek_aad("t_a", 1))
    assert again.unwrap(blob, tenant_kek_aad("t_a", 1)) == kek
    assert root.derive("loop-stamp") == again.derive("loop-stamp")
    assert root.derive("loop-stamp") != root.derive("other")
    assert len(root.derive("x")) == 32
    raw = path.read_bytes()
    assert raw.hex() not in repr(root) and str(raw) not in repr(root)
    other = tmp_path / "other.key"
    FileRootKey.create(other)
    assert FileRootKey.load(other).key_id != root.key_id
    with pytest.raises(IntegrityError):
        FileRootKey.load(other).unwrap(blob, tenant_kek_aad("t_a", 1))


def test_file_root_derivation_secret_and_earlier_roots(tmp_path: Path) -> None:
    """Never rotated: derived keys come from the key file itself, as they always did. With a
    ``root.key.derive`` (written by a root rotation) they come from the secret in it, which
    opens with AES-GCM under any root file beside it (docs/FORMAT.md)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    def hkdf(secret: bytes, purpose: bytes) -> bytes:
        return HKDF(hashes.SHA256(), 32, None, b"sealmail/" + purpose).derive(secret)

    path = tmp_path / "keys" / "root.key"
    FileRootKey.create(path)
    first = path.read_bytes()
    assert FileRootKey.load(path).derive("loop-stamp") == hkdf(first, b"loop-stamp")

    # what a rotation leaves: a new root.key, the old one as root.key.old-<id>, the secret
    old_id = file_key_id(first)
    path.rename(FileRootKey.old_path(path, old_id))
    FileRootKey.create(path)
    second = path.read_bytes()
    with pytest.raises(ConfigError, match="derivation secret .* is missing"):
        FileRootKey.load(path)
    write_private(FileRootKey.derive_path(path), wrap(second, first, DERIVE_AAD))
    blob = FileRootKey.derive_path(path).read_bytes()
    assert AESGCM(second).decrypt(blob[1:13], blob[13:], b"sealmail/derive/v1") == first
    root = FileRootKey.load(path)
    assert root.derive("loop-stamp") == hkdf(first, b"loop-stamp")
    assert root.key_id == file_key_id(second)
    # KEKs still wrapped by the earlier root open; new ones are wrapped by the current one
    aad = tenant_kek_aad("t_a", 1)
    kek = new_key()
    assert root.unwrap(wrap(first, kek, aad), aad) == kek
    assert unwrap(second, root.wrap(kek, aad), aad) == kek
    assert root.wrapped_by(wrap(first, kek, aad), aad) == old_id
    # a derivation secret no root file opens is refused, not silently replaced
    write_private(FileRootKey.derive_path(path), wrap(new_key(), first, DERIVE_AAD))
    with pytest.raises(ConfigError, match="does not open"):
        FileRootKey.load(path)
