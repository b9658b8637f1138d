"""Who is asking: the client's address as the portal believes it (``portal_trusted_proxies``).

From a peer that is not a trusted proxy, ``X-Forwarded-For`` and ``Forwarded`` are ignored:
the TCP peer is the client. From a trusted proxy, the hops are walked from the right (the
entry the nearest proxy appended) leftwards while the hop reached is itself a trusted
proxy; the first untrusted address is the client. A client can write whatever it likes on
the left of the header, and the walk never gets there. An entry that is not an address
(``unknown``, an obfuscated node, garbage) stops the walk: the client is then the last hop
we could trust.

A proxy that appends to ``X-Forwarded-For`` passes a ``Forwarded`` header the client sent
through untouched (and the other way round), so when both are present and name different
clients neither is believed and the peer stands for the client: a request cannot pick the
bucket it is counted in.

``X-Forwarded-Proto`` and ``X-Forwarded-Host`` are never read: nothing the portal answers is
built from the request's scheme or host (redirects are relative, links come from
``portal_base_url`` or the tenant's portal host), so there is nothing a proxy's word could
change or an attacker's word could downgrade.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

UNKNOWN = "unknown"
_HOST_PORT = re.compile(r"^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$")
_BRACKETED = re.compile(r"^\[([^\]]+)\](?::(\d{1,5}))?$")


def parse_node(text: str) -> Address | None:
    """An address from an ``X-Forwarded-For`` entry or a ``Forwarded`` ``for=`` value:
    ``192.0.2.1``, ``192.0.2.1:4711``, ``2001:db8::1``, ``[2001:db8::1]:4711``; None for
    anything else. IPv4-mapped IPv6 addresses become IPv4, so one client has one bucket."""
    text = text.strip()
    for pattern in (_HOST_PORT, _BRACKETED):
        m = pattern.match(text)
        if m:
            if m.group(2) and int(m.group(2)) > 65535:
                return None
            text = m.group(1)
            break
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _forwarded_node(value: str) -> Address | None:
    """RFC 7239 writes an IPv6 node in brackets (``"[2001:db8::1]:4711"``); bare, it is
    not a valid node."""
    if value.count(":") > 1 and not value.startswith("["):
        return None
    return parse_node(value)


def split_outside_quotes(value: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for ch in value:
        if escaped:
            escaped = False
        elif quoted and ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == separator and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return parts


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def forwarded_elements(value: str) -> list[dict[str, str]]:
    """RFC 7239: comma-separated elements of ``;``-separated ``name=value`` pairs (values
    may be quoted). A pair without ``=`` leaves its element empty: it names nobody."""
    elements = []
    for element in split_outside_quotes(value, ","):
        pairs: dict[str, str] = {}
        for pair in split_outside_quotes(element, ";"):
            name, sep, raw = pair.partition("=")
            if not sep:
                if pair.strip():
                    pairs = {}
                    break
                continue
            pairs[name.strip().lower()] = _unquote(raw)
        elements.append(pairs)
    return elements


@dataclasses.dataclass(frozen=True)
class TrustedProxies:
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, cidrs: Iterable[str]) -> TrustedProxies:
        return cls(tuple(ipaddress.ip_network(c, strict=False) for c in cidrs))

    def trusts(self, address: Address | None) -> bool:
        return address is not None and any(address in net for net in self.networks)

    def _walk(self, peer: Address, hops: list[Address | None]) -> Address:
        current = peer
        for hop in reversed(hops):
            if not self.trusts(current) or hop is None:
                break
            current = hop
        return current

    def client_address(self, scope: Scope) -> str:
        """The client's address for rate limits and audit rows (``"unknown"`` without one)."""
        client = scope.get("client")
        peer = parse_node(client[0]) if client else None
        if peer is None:
            return client[0] if client else UNKNOWN
        if not self.trusts(peer):
            return str(peer)
        headers = Headers(scope=scope)
        found: set[Address] = set()
        forwarded = headers.getlist("forwarded")
        if forwarded:
            elements = forwarded_elements(",".join(forwarded))
            found.add(self._walk(peer, [_forwarded_node(e.get("for", "")) for e in elements]))
        xff = headers.getlist("x-forwarded-for")
        if xff:
            entries = ",".join(xff).split(",")
            found.add(self._walk(peer, [parse_node(e) for e in entries]))
        if len(found) == 1:
            return str(found.pop())
        return str(peer)
