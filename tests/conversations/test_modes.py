"""conversations.modes: the one place that says who may reply or forward, and to whom."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from conversations.modes import (
    forward_allowed,
    forward_mode,
    may_reply,
    reply_mode,
    reply_recipients,
)

TENANT = SimpleNamespace(reply_default="sender", forward_default="internal")


@pytest.mark.parametrize(
    ("own", "expected"), [("", "sender"), ("all", "all"), ("NONE", "none"), ("bogus", "none")]
)
def test_reply_mode_is_the_messages_own_else_the_tenants(own: str, expected: str) -> None:
    assert reply_mode(SimpleNamespace(reply_mode=own, forward_mode=""), TENANT) == expected


@pytest.mark.parametrize(
    ("own", "expected"), [("", "internal"), ("yes", "yes"), ("no", "no"), ("??", "no")]
)
def test_forward_mode_is_the_messages_own_else_the_tenants(own: str, expected: str) -> None:
    assert forward_mode(SimpleNamespace(reply_mode="", forward_mode=own), TENANT) == expected


def test_without_a_tenant_the_defaults_are_the_products() -> None:
    msg = SimpleNamespace(reply_mode="", forward_mode="")
    assert (reply_mode(msg, None), forward_mode(msg, None)) == ("all", "yes")


def test_may_reply() -> None:
    assert [may_reply(m) for m in ("none", "sender", "all")] == [False, True, True]
    assert [may_reply(m, reply_all=True) for m in ("none", "sender", "all")] == [False, False, True]


def test_reply_goes_to_the_sender_and_reply_all_to_the_others_once() -> None:
    to = ["Bob <BOB@client.example>", "Carol <carol@x.example>", "not an address"]
    cc = ["carol@x.example", "Dan <dan@acme.example>"]
    sender = "Alice Smith <alice@acme.example>"
    assert reply_recipients("bob@client.example", sender, to, cc, reply_all=False) == (
        [("Alice Smith", "alice@acme.example")],
        [],
    )
    assert reply_recipients("bob@client.example", sender, to, cc, reply_all=True) == (
        [("Alice Smith", "alice@acme.example")],
        [("Carol", "carol@x.example"), ("Dan", "dan@acme.example")],
    )


def test_a_sender_without_an_address_falls_back_to_the_envelope() -> None:
    to, cc = reply_recipients(
        "bob@client.example", "Undisclosed", [], [], reply_all=False, mail_from="a@acme.example"
    )
    assert (to, cc) == ([("", "a@acme.example")], [])


def test_answering_ones_own_message_goes_to_its_recipients() -> None:
    to, cc = reply_recipients(
        "bob@client.example",
        "bob@client.example",
        ["alice@acme.example", "bob@client.example"],
        ["carol@x.example"],
        reply_all=True,
    )
    assert to == [("", "alice@acme.example")]
    assert cc == [("", "carol@x.example")]


def test_forward_allowed() -> None:
    domains = ["acme.example", "Acme.Bank"]
    assert forward_allowed("x@anywhere.example", "yes", domains)
    assert not forward_allowed("x@acme.example", "no", domains)
    assert forward_allowed("X@ACME.example", "internal", domains)
    assert forward_allowed("y@acme.bank", "internal", domains)
    assert not forward_allowed("x@sub.acme.example", "internal", domains)
    assert not forward_allowed("x@acme.example.evil", "internal", domains)
    assert not forward_allowed("x@anywhere.example", "whatever", domains)
