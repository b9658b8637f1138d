"""This process's short-lived cache of a tenant's signing keys, one per keyring (so two
opened :class:`~core.services.Services` never share one). A change made here (generate,
activate) forgets the tenant's entry at once; one made by another process (the CLI while
``serve`` runs) shows within ``TTL`` seconds, like the keyring's active KEK."""

from __future__ import annotations

import dataclasses
import time
import weakref

from core.keyring import KeyRing

TTL = 60.0


@dataclasses.dataclass(frozen=True)
class Signer:
    """The active key of one domain, ready for dkimpy."""

    domain: str
    selector: str
    pem: bytes = dataclasses.field(repr=False)


_caches: weakref.WeakKeyDictionary[KeyRing, dict[str, tuple[float, dict[str, Signer]]]] = (
    weakref.WeakKeyDictionary()
)


def get(keyring: KeyRing, tenant_id: str) -> dict[str, Signer] | None:
    entry = _caches.get(keyring, {}).get(tenant_id)
    if entry is None or time.monotonic() - entry[0] >= TTL:
        return None
    return entry[1]


def put(keyring: KeyRing, tenant_id: str, signers: dict[str, Signer]) -> None:
    _caches.setdefault(keyring, {})[tenant_id] = (time.monotonic(), signers)


def forget(keyring: KeyRing, tenant_id: str) -> None:
    _caches.get(keyring, {}).pop(tenant_id, None)
