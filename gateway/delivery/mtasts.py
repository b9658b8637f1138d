"""MTA-STS (RFC 8461): a recipient domain's promise that its MX hosts speak verified TLS.

``_mta-sts.<domain>`` TXT says a policy exists and gives its id; the policy itself is at
``https://mta-sts.<domain>/.well-known/mta-sts.txt``, fetched over HTTPS with a certificate
that verifies, no redirects, size-limited. Policies are cached for their ``max_age`` and
fetched again only when the TXT id changes. As the RFC says, a failed look-up with no
cached policy counts as no policy; with one, the cached policy keeps applying.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable

from core.errors import TransientError

log = logging.getLogger("sealmail.gateway.mtasts")

MAX_POLICY_BYTES = 64 * 1024
MAX_AGE_LIMIT = 31557600  # one year, RFC 8461 §3.2
MODES = ("enforce", "testing", "none")


@dataclasses.dataclass(frozen=True)
class Policy:
    mode: str
    mx: tuple[str, ...]
    max_age: int
    id: str = ""

    def matches(self, host: str) -> bool:
        """RFC 8461 §4.1: exact name, or ``*.`` standing for exactly one leftmost label."""
        host = host.rstrip(".").lower()
        for pattern in self.mx:
            pattern = pattern.rstrip(".").lower()
            if pattern.startswith("*."):
                label, _, rest = host.partition(".")
                if label and rest == pattern[2:]:
                    return True
            elif host == pattern:
                return True
        return False


def parse_policy(text: str) -> Policy:
    """The policy file's fields; ValueError when it is not a valid STSv1 policy."""
    fields: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"not a key: value line: {line[:60]!r}")
        fields.setdefault(key.strip().lower(), []).append(value.strip())
    if fields.get("version") != ["STSv1"]:
        raise ValueError("version is not STSv1")
    mode = (fields.get("mode") or [""])[0].lower()
    if mode not in MODES:
        raise ValueError(f"bad mode {mode!r}")
    try:
        max_age = int((fields.get("max_age") or [""])[0])
    except ValueError:
        raise ValueError("bad max_age") from None
    if not 0 <= max_age <= MAX_AGE_LIMIT:
        raise ValueError("max_age out of range")
    mx = tuple(m for m in fields.get("mx", []) if m)
    if mode != "none" and not mx:
        raise ValueError("no mx patterns")
    return Policy(mode=mode, mx=mx, max_age=max_age)


def parse_txt(strings: list[str]) -> str | None:
    """The policy id from the ``_mta-sts`` TXT records; None unless exactly one STSv1."""
    records = [s for s in strings if s.startswith("v=STSv1")]
    if len(records) != 1:
        return None
    for part in records[0].split(";"):
        key, _, value = part.strip().partition("=")
        if key == "id" and value.isalnum() and len(value) <= 32:
            return value
    return None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        return None  # RFC 8461 §3.3: redirects are not followed


def _fetch(url: str, timeout: float, context: ssl.SSLContext | None) -> str:
    if not url.startswith("https://"):
        raise TransientError("MTA-STS policies only over HTTPS")
    ctx = context or ssl.create_default_context()
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx), _NoRedirect)
    req = urllib.request.Request(url, headers={"User-Agent": "sealmail-mta-sts"})  # noqa: S310
    try:
        with opener.open(req, timeout=timeout) as resp:
            if resp.status != 200:
                raise TransientError(f"MTA-STS policy answered {resp.status}")
            ctype = resp.headers.get_content_type()
            if ctype != "text/plain":
                raise TransientError(f"MTA-STS policy has content type {ctype}")
            data = resp.read(MAX_POLICY_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise TransientError(f"MTA-STS policy answered {exc.code}") from None
    except (OSError, ValueError) as exc:
        raise TransientError(f"MTA-STS policy fetch failed: {type(exc).__name__}") from None
    if len(data) > MAX_POLICY_BYTES:
        raise TransientError("MTA-STS policy too large")
    return data.decode("utf-8", "replace")


class MtaSts:
    """Policies per domain, cached in this process for their ``max_age``.

    ``txt`` is an async callable returning the TXT strings of a name ([] when there are
    none; TransientError on a DNS failure). ``url_for`` and ``context`` move the HTTPS
    fetch elsewhere and choose its trust (tests: a loopback server and a test CA), as in
    :mod:`gateway.pipeline.crypto.wkd`."""

    def __init__(
        self,
        txt: Callable[[str], Awaitable[list[str]]],
        *,
        timeout: float = 10,  # noqa: ASYNC109
        url_for: Callable[[str], str] | None = None,
        context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._txt = txt
        self.timeout = timeout
        self.url_for = url_for
        self.context = context
        self.clock = clock
        self._cache: dict[str, tuple[Policy, float]] = {}

    def _cached(self, domain: str) -> Policy | None:
        entry = self._cache.get(domain)
        if entry is None:
            return None
        policy, expires = entry
        if self.clock() >= expires:
            del self._cache[domain]
            return None
        return policy

    async def policy(self, domain: str) -> Policy | None:
        """The domain's policy in force, or None."""
        domain = domain.rstrip(".").lower()
        cached = self._cached(domain)
        try:
            strings = await self._txt(f"_mta-sts.{domain}")
        except TransientError as exc:
            log.info("MTA-STS TXT for %s failed: %s", domain, exc)
            return cached
        policy_id = parse_txt(list(strings))
        if policy_id is None:
            return cached
        if cached is not None and cached.id == policy_id:
            return cached
        url = f"https://mta-sts.{domain}/.well-known/mta-sts.txt"
        target = self.url_for(url) if self.url_for else url
        try:
            text = await asyncio.to_thread(_fetch, target, self.timeout, self.context)
            policy = dataclasses.replace(parse_policy(text), id=policy_id)
        except (TransientError, ValueError) as exc:
            log.warning("MTA-STS policy of %s unusable: %s", domain, exc)
            return cached
        if policy.mode == "none" or policy.max_age == 0:
            self._cache.pop(domain, None)
        else:
            self._cache[domain] = (policy, self.clock() + policy.max_age)
        return policy
