"""Method ``pdf`` (issue 16): the policy accepts it, and the disposition follows it."""

from __future__ import annotations

import pytest

from core.policy import PolicyError, parse_policy
from core.policy.disposition import DISPOSITIONS, disposition_for


def test_policy_accepts_method_pdf() -> None:
    policy = parse_policy("rules:\n  - name: p\n    action: encrypt\n    method: pdf\n")
    assert policy.rules[0].method == "pdf"
    with pytest.raises(PolicyError, match="pdf"):  # the error lists it among the methods
        parse_policy("rules:\n  - name: p\n    action: encrypt\n    method: fax\n")


@pytest.mark.parametrize(
    ("method", "keys", "pdf_when_no_key", "expected"),
    [
        ("pdf", {"pgp", "smime"}, False, "pdf"),
        ("auto", set(), False, "portal"),
        ("auto", set(), True, "pdf"),
        ("auto", {"pgp"}, True, "pgp"),
        ("auto", {"smime"}, True, "smime"),
        ("portal", set(), True, "portal"),
    ],
)
def test_disposition(method: str, keys: set[str], pdf_when_no_key: bool, expected: str) -> None:
    got = disposition_for("encrypt", method, keys, pdf_when_no_key=pdf_when_no_key)
    assert got == expected and got in DISPOSITIONS
