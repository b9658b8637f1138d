"""AES-256-GCM key wrapping: a key sealed under another with associated data naming what it
belongs to (a tenant's KEK, an object's data key), so a wrapped key moved to another tenant or
object does not unwrap. A random 96-bit nonce per wrap; a version byte in front.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.errors import IntegrityError

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


def dkim_key_aad(tenant_id: str, domain: str, selector: str) -> bytes:
    """A DKIM private key belongs to one tenant, domain and selector: moved to another
    row it does not unwrap."""
    return f"sealmail/dkim/v1\x00{tenant_id}\x00{domain}\x00{selector}".encode()
