"""The sentence for a decision about a message written in the portal."""

from __future__ import annotations

from conversations.explain import portal_origin_words


def test_words() -> None:
    inside = {"portal_origin": "reply", "portal_route": "internal"}
    outside = {"portal_origin": "forward", "portal_route": "external"}
    assert portal_origin_words(inside, "Acme") == (
        "Reply written in the secure portal: delivered by mail to an address of Acme"
    )
    assert portal_origin_words(outside, "Acme") == (
        "Message forwarded from the secure portal: sealed for an external recipient"
    )
    assert portal_origin_words({"portal_origin": "reply"}, "Acme") is None  # held: the rule says
    assert portal_origin_words({"matched": "cards"}, "Acme") is None
