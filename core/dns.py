"""Asking DNS from core (the live checks of a tenant's published records): dnspython's async
resolver, the system's or the ``dns_resolver`` setting's ("host:port"), with no cache, so a
record just published shows at once.

An answer is a list of TXT strings, ``None`` when the name does not exist (NXDOMAIN), ``[]``
when it exists without TXT; a resolver that does not answer is a :class:`TransientError`.
"""

from __future__ import annotations

from typing import Any

from core.config.values import parse_hostport
from core.errors import TransientError

LIFETIME = 5.0


class TxtResolver:
    """TXT look-ups through one resolver; built lazily (nothing at import time)."""

    def __init__(self, dns_resolver: str = "", lifetime: float = LIFETIME) -> None:
        self.dns_resolver = dns_resolver
        self.lifetime = lifetime
        self._resolver: Any = None

    def _get(self) -> Any:  # noqa: ANN401 - dns.asyncresolver.Resolver, imported lazily
        if self._resolver is None:
            import dns.asyncresolver

            if self.dns_resolver:
                host, port = parse_hostport(self.dns_resolver)
                resolver = dns.asyncresolver.Resolver(configure=False)
                resolver.nameservers = [host]
                resolver.port = port
            else:
                resolver = dns.asyncresolver.Resolver()
            resolver.lifetime = self.lifetime
            resolver.timeout = min(2.0, self.lifetime)
            self._resolver = resolver
        return self._resolver

    async def txt(self, name: str) -> list[str] | None:
        """The TXT records of ``name``, each one string (its pieces joined)."""
        import dns.exception
        import dns.resolver

        try:
            answer = await self._get().resolve(name, "TXT", search=False)
        except dns.resolver.NXDOMAIN:
            return None
        except dns.resolver.NoAnswer:
            return []
        except (dns.exception.DNSException, OSError) as exc:
            raise TransientError(f"DNS TXT {name}: {type(exc).__name__}") from None
        return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]
