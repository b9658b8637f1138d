"""A tenant's Ed25519 signing keys for checkpoints and receipts.

The private key is a sealed object of the tenant (kind ``signing-key``), so it is encrypted
at rest under a data key wrapped by the tenant's key-encryption key and re-wrapped by key
rotation like every other object. The public key is published
(``/.well-known/sealmail/receipt-keys``, ``/admin``). A new key (:func:`rotate`) retires the
old one, which stays published: receipts signed with it keep verifying.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.evidence.models import SigningKey
from core.models import now
from core.storage.vault import Vault

ALGORITHM = "Ed25519"
KIND = "signing-key"


def canonical(value: Any) -> bytes:
    """The one byte form of a JSON value that is hashed or signed: sorted keys, no spaces,
    UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_of(public_raw: bytes) -> str:
    return "rk_" + hashlib.sha256(public_raw).hexdigest()[:16]


async def _newest(session: AsyncSession, tenant_id: str) -> SigningKey | None:
    return (
        await session.execute(
            select(SigningKey)
            .where(SigningKey.tenant_id == tenant_id, SigningKey.retired_at.is_(None))
            .order_by(SigningKey.created_at.desc(), SigningKey.id)
            .limit(1)
        )
    ).scalar_one_or_none()


async def _create(session: AsyncSession, vault: Vault, tenant_id: str) -> SigningKey:
    private = Ed25519PrivateKey.generate()
    raw = _raw(private.public_key())
    seed = private.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    obj = await vault.seal(session, tenant_id, seed, kind=KIND)
    key = SigningKey(
        id=key_id_of(raw),
        tenant_id=tenant_id,
        public_key=base64.b64encode(raw).decode("ascii"),
        private_object_id=obj.id,
        created_at=now(),
    )
    session.add(key)
    await session.flush()
    return key


async def active_key(session: AsyncSession, vault: Vault, tenant_id: str) -> SigningKey:
    """The tenant's signing key, made at first use (the caller commits)."""
    return await _newest(session, tenant_id) or await _create(session, vault, tenant_id)


async def rotate(session: AsyncSession, vault: Vault, tenant_id: str) -> SigningKey:
    """A new signing key; the current one is retired (and stays published)."""
    old = await _newest(session, tenant_id)
    if old is not None:
        old.retired_at = now()
    return await _create(session, vault, tenant_id)


async def signer(
    session: AsyncSession, vault: Vault, tenant_id: str
) -> tuple[SigningKey, Ed25519PrivateKey]:
    key = await active_key(session, vault, tenant_id)
    seed = await vault.read(session, tenant_id, key.private_object_id)
    return key, Ed25519PrivateKey.from_private_bytes(seed)


def sign(private: Ed25519PrivateKey, payload: Any) -> str:
    return base64.b64encode(private.sign(canonical(payload))).decode("ascii")


def verify(public_b64: str, payload: Any, signature_b64: str) -> bool:
    """Whether ``signature_b64`` is the key's signature of ``payload`` (canonical JSON)."""
    try:
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_b64, validate=True))
        public.verify(base64.b64decode(signature_b64, validate=True), canonical(payload))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


async def published(session: AsyncSession, tenant_id: str | None = None) -> list[dict[str, Any]]:
    """Every signing key (current and retired) as it is published."""
    stmt = select(SigningKey).order_by(SigningKey.tenant_id, SigningKey.created_at)
    if tenant_id:
        stmt = stmt.where(SigningKey.tenant_id == tenant_id)
    return [
        {
            "tenant_id": k.tenant_id,
            "key_id": k.id,
            "algorithm": ALGORITHM,
            "public_key": k.public_key,
            "created_at": k.created_at,
            "retired_at": k.retired_at,
        }
        for k in (await session.execute(stmt)).scalars().all()
    ]
