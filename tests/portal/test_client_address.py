"""The client address behind proxies (``portal.client``): X-Forwarded-For and RFC 7239
``Forwarded`` walked from the right through trusted proxies only."""

from __future__ import annotations

import pytest

from portal.client import TrustedProxies, forwarded_elements, parse_node

PROXIES = TrustedProxies.parse(["127.0.0.1/32", "10.0.0.0/8", "fd00::/8"])


def _scope(peer: str, *headers: tuple[str, str]) -> dict[str, object]:
    return {
        "type": "http",
        "client": (peer, 50000),
        "headers": [(k.encode(), v.encode("latin-1")) for k, v in headers],
    }


XFF, FWD = "x-forwarded-for", "forwarded"
CASES = [
    # (peer, headers, client)
    ("192.0.2.9", [(XFF, "198.51.100.1")], "192.0.2.9"),  # untrusted peer: header ignored
    ("192.0.2.9", [(FWD, "for=198.51.100.1")], "192.0.2.9"),
    ("127.0.0.1", [], "127.0.0.1"),
    ("127.0.0.1", [(XFF, "198.51.100.1")], "198.51.100.1"),
    ("127.0.0.1", [(XFF, "203.0.113.66, 198.51.100.1")], "198.51.100.1"),  # spoofed leftmost
    ("127.0.0.1", [(XFF, "203.0.113.66"), (XFF, "198.51.100.1")], "198.51.100.1"),
    ("127.0.0.1", [(XFF, "198.51.100.1, 10.1.2.3")], "198.51.100.1"),  # chain of proxies
    ("127.0.0.1", [(XFF, "10.9.9.9, 10.1.2.3")], "10.9.9.9"),  # all trusted: the leftmost
    ("127.0.0.1", [(XFF, "198.51.100.1:4711")], "198.51.100.1"),
    ("127.0.0.1", [(XFF, "[2001:db8::1]:4711")], "2001:db8::1"),
    ("127.0.0.1", [(XFF, "2001:DB8::1")], "2001:db8::1"),
    ("127.0.0.1", [(XFF, "::ffff:198.51.100.1")], "198.51.100.1"),
    ("127.0.0.1", [(XFF, "garbage")], "127.0.0.1"),  # invalid: the walk stops
    ("127.0.0.1", [(XFF, "198.51.100.1, unknown")], "127.0.0.1"),
    ("127.0.0.1", [(XFF, "")], "127.0.0.1"),
    ("127.0.0.1", [(FWD, "for=198.51.100.1")], "198.51.100.1"),
    ("127.0.0.1", [(FWD, 'for="198.51.100.1:4711";proto=https;by=10.0.0.1')], "198.51.100.1"),
    ("127.0.0.1", [(FWD, 'For="[2001:db8:cafe::17]:4711"')], "2001:db8:cafe::17"),
    ("127.0.0.1", [(FWD, "for=203.0.113.66, for=198.51.100.1")], "198.51.100.1"),
    ("127.0.0.1", [(FWD, "for=198.51.100.1, for=10.0.0.7;proto=https")], "198.51.100.1"),
    ("127.0.0.1", [(FWD, 'for="_hidden", for=198.51.100.1')], "198.51.100.1"),
    ("127.0.0.1", [(FWD, "for=unknown")], "127.0.0.1"),
    ("127.0.0.1", [(FWD, "for=_obfuscated")], "127.0.0.1"),
    ("127.0.0.1", [(FWD, "for=2001:db8::1")], "127.0.0.1"),  # IPv6 must be bracketed+quoted
    ("127.0.0.1", [(FWD, 'for="198.51.100.1, for=203.0.113.66"')], "127.0.0.1"),
    ("127.0.0.1", [(FWD, "proto=https")], "127.0.0.1"),
    ("127.0.0.1", [(FWD, "garbage")], "127.0.0.1"),
    # both headers: believed only when they agree, else the peer stands for the client
    ("127.0.0.1", [(FWD, "for=198.51.100.1"), (XFF, "198.51.100.1")], "198.51.100.1"),
    ("127.0.0.1", [(FWD, "for=203.0.113.66"), (XFF, "198.51.100.1")], "127.0.0.1"),
    ("fd00::5", [(XFF, "198.51.100.1")], "198.51.100.1"),
    ("::ffff:127.0.0.1", [(XFF, "198.51.100.1")], "198.51.100.1"),
    ("10.0.0.1", [(XFF, "198.51.100.1, 192.0.2.50, 10.0.0.2")], "192.0.2.50"),
]


@pytest.mark.timeout(10)
@pytest.mark.parametrize(("peer", "headers", "client"), CASES)
def test_client_address(peer: str, headers: list[tuple[str, str]], client: str) -> None:
    assert PROXIES.client_address(_scope(peer, *headers)) == client


@pytest.mark.timeout(10)
def test_no_trusted_proxies_means_the_peer() -> None:
    scope = _scope("127.0.0.1", (XFF, "198.51.100.1"), (FWD, "for=198.51.100.1"))
    assert TrustedProxies().client_address(scope) == "127.0.0.1"
    assert TrustedProxies().client_address({"type": "http", "headers": []}) == "unknown"


@pytest.mark.timeout(10)
def test_parsers() -> None:
    assert str(parse_node(" 192.0.2.1 ")) == "192.0.2.1"
    assert parse_node("192.0.2.1:99999") is None
    assert parse_node("[192.0.2.1") is None
    assert parse_node("example.org") is None
    assert forwarded_elements('for="a;b,c";proto=https, for=x') == [
        {"for": "a;b,c", "proto": "https"},
        {"for": "x"},
    ]
