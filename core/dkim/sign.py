"""DKIM-sign the mail sealmail writes for a tenant (called by :func:`core.outbox.post`).

A message is signed when its From header names one address whose domain is one of the
tenant's domains with an active key: ``d=`` that domain, ``s=`` the key's selector,
relaxed/relaxed, the headers RFC 6376 recommends that are present (From signed once more so
none can be added) and ``Auto-Submitted``. Anything else goes out as it is: the operator's
own address, or a tenant with no active key yet.

The tenant's own messages that sealmail relays (outbox kinds ``clear`` and ``encrypted``)
are never signed here: they are the user's mail, signed (or not) by the user's own system,
and a signature of ours would claim we wrote them.

Signing must never stop a notice: a key that does not open or a message dkimpy cannot parse
is logged and the mail leaves unsigned (as it did before keys existed). The RSA work runs
off the event loop; the unwrapped keys are cached briefly (:mod:`core.dkim.cache`).
"""

from __future__ import annotations

import asyncio
import base64
import email.parser
import email.policy
import email.utils
import logging
import textwrap

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.dkim import cache
from core.dkim.keys import ACTIVE, private_key
from core.dkim.models import DkimKey
from core.errors import IntegrityError
from core.keyring import KeyRing
from core.models import TenantDomain

log = logging.getLogger("sealmail.dkim")

UNSIGNED_KINDS = ("clear", "encrypted")  # the tenant's own messages, relayed
EXTRA_HEADERS = (b"auto-submitted",)


def from_domain(raw: bytes) -> str | None:
    """The domain of the one address in the From header, lower case; None when there is
    no From or it names more or less than one address."""
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        end = raw.find(b"\n\n")
    head = raw if end < 0 else raw[: end + 2]
    headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(head)
    values = headers.get_all("From") or []
    addresses = email.utils.getaddresses([str(v) for v in values])
    if len(addresses) != 1 or "@" not in addresses[0][1]:
        return None
    domain = addresses[0][1].rpartition("@")[2].strip().rstrip(".").lower()
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return None


def _pem(der: bytes) -> bytes:
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode("ascii"), 64))
    return f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n".encode()


async def signers(
    session: AsyncSession, keyring: KeyRing, tenant_id: str
) -> dict[str, cache.Signer]:
    """The tenant's active keys by domain (only domains it still has), cached briefly."""
    cached = cache.get(keyring, tenant_id)
    if cached is not None:
        return cached
    stmt = (
        select(DkimKey)
        .join(
            TenantDomain,
            (TenantDomain.domain == DkimKey.domain) & (TenantDomain.tenant_id == DkimKey.tenant_id),
        )
        .where(DkimKey.tenant_id == tenant_id, DkimKey.state == ACTIVE)
        .order_by(DkimKey.activated_at)
    )
    found: dict[str, cache.Signer] = {}
    for key in (await session.execute(stmt)).scalars().all():
        try:
            der = await private_key(session, keyring, key)
        except IntegrityError:
            log.error("DKIM key %s of %s for %s does not open", key.selector, tenant_id, key.domain)
            continue
        found[key.domain] = cache.Signer(key.domain, key.selector, _pem(der))
    cache.put(keyring, tenant_id, found)
    return found


def signature(raw: bytes, signer: cache.Signer) -> bytes:
    """The DKIM-Signature header field (CRLF-terminated) for ``raw``."""
    import dkim

    d = dkim.DKIM(raw, linesep=b"\r\n")
    d.should_sign.update(EXTRA_HEADERS)
    return d.sign(
        signer.selector.encode(),
        signer.domain.encode(),
        signer.pem,
        canonicalize=(b"relaxed", b"relaxed"),
    )


async def sign_outgoing(
    session: AsyncSession, keyring: KeyRing, tenant_id: str, kind: str, raw: bytes
) -> bytes:
    """``raw`` with a DKIM-Signature in front when the tenant has an active key for its From
    domain and ``kind`` is mail sealmail writes; else ``raw`` unchanged."""
    if kind in UNSIGNED_KINDS:
        return raw
    domain = from_domain(raw)
    if domain is None:
        return raw
    signer = (await signers(session, keyring, tenant_id)).get(domain)
    if signer is None:
        return raw
    try:
        header = await asyncio.to_thread(signature, raw, signer)
    except Exception as exc:  # noqa: BLE001 - dkimpy's errors; the notice must still go
        log.error("DKIM signing for %s failed: %s", domain, type(exc).__name__)
        return raw
    return header + raw
