"""A tenant's DKIM keys: made, rotated, switched, and opened for signing.

One key per domain of the tenant signs at a time. The states of a key (``dkim_keys.state``):

- ``pending``: made, its public half waiting to be published as
  ``<selector>._domainkey.<domain>``; it signs nothing yet.
- ``active``: signs the mail sealmail writes for the tenant with a From in that domain.
  Activating a pending key (when DNS shows its record, or forced) makes it active.
- ``retired``: the key that was active before; it signs nothing. Its record should stay in
  DNS for a week (mail in flight or in a receiver's queue still verifies), then be removed.

A rotation makes a new pending key beside the active one (which keeps signing), under a new
selector; the switch happens when the new record is published. RSA 2048 (every receiver
checks it; ed25519 is not yet checked by all). The private key is kept only wrapped by the
tenant's key-encryption key, bound to tenant, domain and selector (:func:`dkim_key_aad`).
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.accounts.domains import tenant_domains
from core.aead import dkim_key_aad, unwrap, wrap
from core.audit import audit
from core.dkim.cache import forget
from core.dkim.models import DkimKey
from core.errors import NotFound, PermanentError
from core.keyring import KeyRing
from core.models import now

PENDING, ACTIVE, RETIRED = "pending", "active", "retired"
STATES = (PENDING, ACTIVE, RETIRED)
RSA_BITS = 2048
KEEP_RETIRED_RECORD = 7 * 86400.0  # how long a retired key's record should stay published


def _rsa_pair() -> tuple[bytes, str]:
    """A new RSA key: its private half (PKCS#8 DER) and public half (base64 DER, the p=)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    private = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, base64.b64encode(public).decode("ascii")


def selector_for(tenant_id: str, taken: set[str], when: float | None = None) -> str:
    """``sm<yyyymm>-<short tenant id>``, with a letter after the month when that is taken
    (a second rotation in one month): short, readable, unique per domain."""
    month = time.strftime("%Y%m", time.gmtime(when if when is not None else time.time()))
    short = tenant_id.removeprefix("t_")[:8].lower()
    for suffix in ("", *"bcdefghijklmnopqrstuvwxyz"):
        name = f"sm{month}{suffix}-{short}"
        if name not in taken:
            return name
    raise PermanentError("no free DKIM selector left this month")


async def keys_of(
    session: AsyncSession, tenant_id: str, domain: str | None = None
) -> Sequence[DkimKey]:
    """The tenant's keys (of one domain), newest first."""
    stmt = select(DkimKey).where(DkimKey.tenant_id == tenant_id)
    if domain is not None:
        stmt = stmt.where(DkimKey.domain == domain)
    stmt = stmt.order_by(DkimKey.domain, DkimKey.created_at.desc(), DkimKey.id.desc())
    return (await session.execute(stmt)).scalars().all()


async def _domains(session: AsyncSession, tenant_id: str, domain: str | None) -> list[str]:
    domains = await tenant_domains(session, tenant_id)
    if domain is None:
        return domains
    wanted = domain.strip().lower().rstrip(".")
    if wanted not in domains:
        raise NotFound(f"{domain!r} is not one of the tenant's domains")
    return [wanted]


async def _new_key(
    session: AsyncSession, keyring: KeyRing, tenant_id: str, domain: str, taken: set[str]
) -> DkimKey:
    selector = selector_for(tenant_id, taken)
    private, public = await asyncio.to_thread(_rsa_pair)
    version, kek = await keyring.active_kek(session, tenant_id)
    key = DkimKey(
        tenant_id=tenant_id,
        domain=domain,
        selector=selector,
        algorithm="rsa-sha256",
        wrapped_private_key=wrap(kek, private, dkim_key_aad(tenant_id, domain, selector)),
        kek_version=version,
        public_key=public,
        state=PENDING,
        created_at=now(),
    )
    session.add(key)
    return key


async def generate(
    session: AsyncSession,
    keyring: KeyRing,
    tenant_id: str,
    actor: str,
    domain: str | None = None,
    *,
    rotate: bool = False,
) -> list[DkimKey]:
    """A new pending key for each domain (or ``domain``) that needs one: with
    ``rotate=False`` a domain with no pending or active key; with ``rotate=True`` also one
    whose key is active (the rotation). A domain that already has a pending key is left as it
    is (its record is what to publish next). Returns the keys made (audited); the caller
    commits."""
    made: list[DkimKey] = []
    for d in await _domains(session, tenant_id, domain):
        existing = await keys_of(session, tenant_id, d)
        states = {k.state for k in existing}
        if PENDING in states or (ACTIVE in states and not rotate):
            continue
        key = await _new_key(session, keyring, tenant_id, d, {k.selector for k in existing})
        made.append(key)
        action = "dkim.rotate" if ACTIVE in states else "dkim.generate"
        await audit(session, tenant_id, actor, action, d, selector=key.selector)
    forget(keyring, tenant_id)
    return made


async def activate(
    session: AsyncSession,
    keyring: KeyRing,
    tenant_id: str,
    actor: str,
    domain: str | None = None,
    *,
    published: dict[str, bool] | None = None,
    force: bool = False,
) -> list[DkimKey]:
    """Switch each domain's pending key to active and retire the one it replaces.
    ``published`` says, per selector, whether DNS shows the pending key's record; a key whose
    record is not shown is refused with a sentence unless ``force`` (the forced switch:
    mail signed before the record is visible fails DKIM at receivers until it is)."""
    switched: list[DkimKey] = []
    refused: list[str] = []
    for d in await _domains(session, tenant_id, domain):
        existing = await keys_of(session, tenant_id, d)
        pending = [k for k in existing if k.state == PENDING]
        if not pending:
            continue
        key = pending[0]
        if not force and not (published or {}).get(f"{key.selector}._domainkey.{d}"):
            refused.append(f"{key.selector}._domainkey.{d}")
            continue
        t = now()
        for old in existing:
            if old.state == ACTIVE:
                old.state, old.retired_at = RETIRED, t
        key.state, key.activated_at = ACTIVE, t
        switched.append(key)
        await audit(
            session, tenant_id, actor, "dkim.activate", d, selector=key.selector, forced=force
        )
    if refused:
        raise PermanentError(
            "DNS does not show the new key's record yet at "
            + ", ".join(refused)
            + "; publish it and try again, or switch anyway"
        )
    if not switched:
        raise PermanentError("there is no new key waiting to be switched on")
    forget(keyring, tenant_id)
    return switched


async def private_key(session: AsyncSession, keyring: KeyRing, key: DkimKey) -> bytes:
    """The key's private half (PKCS#8 DER), unwrapped by the tenant's KEK."""
    kek = await keyring.kek(session, key.tenant_id, key.kek_version)
    return unwrap(
        kek, key.wrapped_private_key, dkim_key_aad(key.tenant_id, key.domain, key.selector)
    )
