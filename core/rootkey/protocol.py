"""The key hierarchy: root key (a file, or a key in AWS KMS) → tenant KEK → per-object data
key.

Wrapping is AES-256-GCM with a random 96-bit nonce and associated data naming what the
key belongs to, so a wrapped key moved to another tenant or object does not unwrap. A KMS
root wraps with KMS ``Encrypt`` and the associated data in the encryption context.

Purpose keys (``RootKey.derive``) come from a *derivation secret* by HKDF, not from the
root key itself, so they stay the same when the root is rotated: for a file root created
before rotation existed the secret is that first root key (what derivation always used);
once a root has been rotated the secret lives in a ``.derive`` file, wrapped by the root;
for a KMS root it lives in the database, wrapped by the root
(``core.rootkey.kms_derivation_secret``). See docs/FORMAT.md, "Root rotation".
"""

from __future__ import annotations

from typing import Protocol

DERIVE_AAD = b"sealmail/derive/v1"


class RootKey(Protocol):
    @property
    def key_id(self) -> str: ...

    def wrap(self, key: bytes, aad: bytes) -> bytes: ...

    def unwrap(self, blob: bytes, aad: bytes) -> bytes: ...

    def derive(self, purpose: str) -> bytes: ...

    def check(self) -> None: ...

    def probe(self) -> None: ...

    @property
    def derivation_secret(self) -> bytes: ...
