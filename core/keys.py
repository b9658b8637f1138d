"""The key hierarchy: root key (file; KMS later) → tenant KEK → per-object data key.

Wrapping is AES-256-GCM with a random 96-bit nonce and associated data naming what the
key belongs to, so a wrapped key moved to another tenant or object does not unwrap.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.errors import ConfigError, IntegrityError

KEY_SIZE = 32
_WRAP_VERSION = b"\x01"


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def wrap(kek: bytes, key: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(12)
    return _WRAP_VERSION + nonce + AESGCM(kek).encrypt(nonce, key, aad)


def unwrap(kek: bytes, blob: bytes, aad: bytes) -> bytes:
    if len(blob) < 1 + 12 + 16 or blob[:1] != _WRAP_VERSION:
        raise IntegrityError("wrapped key has an unknown format")
    try:
        return AESGCM(kek).decrypt(blob[1:13], blob[13:], aad)
    except InvalidTag:
        raise IntegrityError("wrapped key failed authentication") from None


def tenant_kek_aad(tenant_id: str, version: int) -> bytes:
    return f"sealmail/kek/v1\x00{tenant_id}\x00{version}".encode()


def data_key_aad(tenant_id: str, object_id: str) -> bytes:
    return f"sealmail/dek/v1\x00{tenant_id}\x00{object_id}".encode()


class RootKey(Protocol):
    key_id: str

    def wrap(self, key: bytes, aad: bytes) -> bytes: ...

    def unwrap(self, blob: bytes, aad: bytes) -> bytes: ...

    def derive(self, purpose: str) -> bytes: ...


class FileRootKey:
    """A 256-bit root key in a file readable only by its owner (mode 0600)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_SIZE:
            raise ConfigError("root key file must hold exactly 32 bytes")
        self._key = key
        self.key_id = "file:" + hashlib.sha256(b"sealmail-root-id" + key).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"FileRootKey({self.key_id})"

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> FileRootKey:
        p = Path(path)
        try:
            mode = p.stat().st_mode
            data = p.read_bytes()
        except FileNotFoundError:
            raise ConfigError(f"root key {p} not found (run 'sealmail init')") from None
        except OSError as exc:
            raise ConfigError(f"root key {p}: {exc.strerror}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(f"root key {p} is readable by others; chmod 600 it")
        return cls(data)

    @staticmethod
    def create(path: str | os.PathLike[str]) -> bool:
        """Write a new root key unless one exists. Returns True if it wrote one."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(p.parent, 0o700)
        try:
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as fh:
            fh.write(new_key())
            fh.flush()
            os.fsync(fh.fileno())
        dfd = os.open(p.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        return True

    def wrap(self, key: bytes, aad: bytes) -> bytes:
        return wrap(self._key, key, aad)

    def unwrap(self, blob: bytes, aad: bytes) -> bytes:
        return unwrap(self._key, blob, aad)

    def derive(self, purpose: str) -> bytes:
        """A key for one purpose (HMAC of the loop stamp, ...), derived with HKDF-SHA256."""
        return HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"sealmail/" + purpose.encode()
        ).derive(self._key)


def load_root_key(uri: str) -> RootKey:
    if uri.startswith("file://"):
        return FileRootKey.load(uri[len("file://") :])
    if uri.startswith("aws-kms://"):
        raise ConfigError("root_key aws-kms:// is not supported by this version")
    raise ConfigError(f"root_key {uri!r}: expected file:// or aws-kms://")


def hmac_sha256(key: bytes, data: bytes) -> str:
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def sha256_hex(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode()
    return hashlib.sha256(data).hexdigest()
