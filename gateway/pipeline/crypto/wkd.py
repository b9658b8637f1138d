"""Web Key Directory look-ups (draft-koch-openpgp-webkey-service): find a recipient's
OpenPGP key at their own domain over HTTPS, when the tenant has turned it on.

The advanced method (``openpgpkey.<domain>``) is tried when that host exists in DNS, then
the direct method. Certificates are verified; answers are size-limited; a key is used only
if it passes the directory's validation and carries the address asked for. Results, found
or not, are cached in ``KeyLookup`` for :data:`CACHE_SECONDS`; a network failure is not
cached (the next message asks again) and never blocks mail: without a key the policy falls
back to the portal.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import PermanentError, TransientError
from core.models import Tenant, now
from core.recipient_keys import import_keys, parse_keys, usable_keys
from core.services import Services
from gateway.models import KeyLookup

log = logging.getLogger("sealmail.gateway.wkd")

CACHE_SECONDS = 24 * 3600.0
MAX_KEY_BYTES = 256 * 1024
_ZB32 = "ybndrfg8ejkmcpqxot1uwisza345h769"


def zbase32(data: bytes) -> str:
    bits = "".join(f"{b:08b}" for b in data)
    bits += "0" * (-len(bits) % 5)
    return "".join(_ZB32[int(bits[i : i + 5], 2)] for i in range(0, len(bits), 5))


def wkd_urls(email: str) -> tuple[str, str]:
    """(advanced, direct) URLs for ``email``."""
    local, _, domain = email.strip().rpartition("@")
    if not local or not domain:
        raise PermanentError(f"not an email address: {email!r}")
    domain = domain.lower().encode("idna").decode("ascii")
    hu = zbase32(hashlib.sha1(local.lower().encode()).digest())  # noqa: S324 - WKD's hash
    query = urllib.parse.urlencode({"l": local})
    return (
        f"https://openpgpkey.{domain}/.well-known/openpgpkey/{domain}/hu/{hu}?{query}",
        f"https://{domain}/.well-known/openpgpkey/hu/{hu}?{query}",
    )


def _fetch(url: str, timeout: float, context: ssl.SSLContext | None) -> bytes | None:
    """The body at ``url``; None on 404; TransientError on any other failure."""
    if not url.startswith("https://"):
        raise TransientError("WKD only over HTTPS")
    ctx = context or ssl.create_default_context()
    req = urllib.request.Request(url, headers={"User-Agent": "sealmail-wkd"})  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:  # noqa: S310
            data = resp.read(MAX_KEY_BYTES + 1)
    except urllib.error.HTTPError as exc:
        if exc.code in (404, 410):
            return None
        raise TransientError(f"WKD answered {exc.code}") from None
    except (OSError, ValueError) as exc:
        raise TransientError(f"WKD look-up failed: {type(exc).__name__}") from None
    if len(data) > MAX_KEY_BYTES:
        raise TransientError("WKD answer too large")
    return data or None


async def _host_exists(host: str, timeout: float) -> bool:  # noqa: ASYNC109
    import dns.asyncresolver
    import dns.exception

    try:
        await dns.asyncresolver.resolve_name(host, lifetime=timeout)
    except (dns.exception.DNSException, OSError):
        return False
    return True


async def wkd_lookup(
    email: str,
    *,
    timeout: float = 10,  # noqa: ASYNC109 - passed to the blocking fetch and the resolver
    url_for: Callable[[str], str] | None = None,
    context: ssl.SSLContext | None = None,
) -> bytes | None:
    """The key published for ``email``, or None if its domain publishes none.

    ``url_for`` maps the standard URLs elsewhere (tests: a loopback server; the DNS check
    is then skipped); ``context`` is the TLS context (tests: one trusting a test CA).
    Raises TransientError when no method gave an answer because of a network failure."""
    advanced, direct = wkd_urls(email)
    host = urllib.parse.urlsplit(advanced).hostname or ""
    methods = [direct]
    if url_for is not None or await _host_exists(host, timeout):
        methods.insert(0, advanced)
    failure: TransientError | None = None
    for url in methods:
        target = url_for(url) if url_for else url
        try:
            data = await asyncio.to_thread(_fetch, target, timeout, context)
        except TransientError as exc:
            failure = exc
            continue
        if data is not None:
            return data
        failure = None
    if failure is not None:
        raise failure
    return None


async def lookup_and_store(
    services: Services,
    session: AsyncSession,
    tenant: Tenant,
    email: str,
    *,
    url_for: Callable[[str], str] | None = None,
    context: ssl.SSLContext | None = None,
) -> bool:
    """Make sure the tenant's directory has ``email``'s WKD key if one is published;
    True if the tenant now has a usable OpenPGP key for it. The caller commits."""
    email = email.strip().lower()
    if await usable_keys(session, tenant.id, email, "pgp"):
        return True
    if not tenant.wkd_lookup:
        return False
    cached = await session.get(KeyLookup, email)
    if cached is not None and now() - cached.checked_at < CACHE_SECONDS and not cached.found:
        return False
    try:
        data = await wkd_lookup(email, url_for=url_for, context=context)
    except TransientError as exc:
        log.info("WKD look-up for a recipient of tenant %s failed: %s", tenant.id, exc)
        return False
    found = False
    if data is not None:
        try:
            parsed = await asyncio.to_thread(parse_keys, data)
            if any(p.kind == "pgp" and p.email == email for p in parsed):
                await import_keys(session, tenant.id, data, source="wkd", actor="wkd")
                found = True
        except PermanentError as exc:
            log.info("WKD key for a recipient of tenant %s refused: %s", tenant.id, exc)
    if cached is None:
        session.add(KeyLookup(email=email, found=found, checked_at=now()))
    else:
        cached.found, cached.checked_at = found, now()
    await session.flush()
    return found
