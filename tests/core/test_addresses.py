"""The one address validator (core/addresses.py): what every door accepts and refuses."""

from __future__ import annotations

import pytest

from core.addresses import (
    InvalidAddress,
    domain_of,
    is_source_route,
    parse_address,
    valid_or_empty,
)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("Alice@Example.COM", "alice@example.com"),
        ("  bob@mail.example.org \n", "bob@mail.example.org"),
        ("o'hara+tag@ex-ample.co.uk", "o'hara+tag@ex-ample.co.uk"),
        ("x@" + "d" * 60 + ".example", "x@" + "d" * 60 + ".example"),
    ],
)
def test_addresses_are_normalized(given: str, stored: str) -> None:
    assert parse_address(given) == stored
    assert valid_or_empty(given) == stored


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("alice", "exactly one @"),
        ("a@b@example.com", "exactly one @"),
        ("@example.com", "nothing before the @"),
        ("alice@localhost", "not a domain name"),
        ("alice@.example.com", "not a domain name"),
        ("alice@example.com.", "not a domain name"),
        ("al ice@example.com", "space or a control character"),
        ("alice@exa\x00mple.com", "space or a control character"),
        ("alice@example.com\r\nBcc: x@y.z", "space or a control character"),
        ("a" * 310 + "@example.com", "longer than 320"),
        ("bob%third.example@example.com", "%-hack"),
        ("third.example!bob@example.com", "bang path"),
    ],
)
def test_non_addresses_are_refused_with_a_reason(given: str, why: str) -> None:
    with pytest.raises(InvalidAddress) as caught:
        parse_address(given)
    assert why in str(caught.value) and repr(given) in str(caught.value)
    assert valid_or_empty(given) == ""


def test_domain_of() -> None:
    assert domain_of("Alice@Example.COM.") == "example.com"
    assert domain_of("example.org") == "example.org"


def test_source_routes_are_recognised_as_the_client_sent_them() -> None:
    assert is_source_route("<@hop.example:bob@example.com>")
    assert is_source_route("< @a.example,@b.example:bob@example.com> SIZE=10")
    assert not is_source_route("<bob@example.com>")
    assert not is_source_route("<>")
