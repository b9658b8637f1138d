"""The decision explanation reads as sentences for every shape the pipeline records
(:mod:`portal.admin.why` through :func:`portal.admin.decisions.explain`), never as raw JSON."""

from __future__ import annotations

import json

import pytest

from core.policy.models import PolicyDecision
from portal.admin.decisions import explain

TRAIL = [{"rule": "deals", "hit": False, "missed": "when.subject_contains"}]


def _said(action: str, rule: str, disposition: str, data: dict) -> list[str]:
    row = PolicyDecision(action=action, rule=rule, disposition=disposition,
                         explanation=json.dumps(data))  # fmt: skip
    return explain(row)["sentences"]


@pytest.mark.parametrize(
    ("action", "rule", "disposition", "data", "first"),
    [
        (
            "encrypt",
            "",
            "portal",
            {
                "rules": [],
                "matched": None,
                "default": "pass",
                "trigger": "subject keyword [secure]",
                "upgraded_from": "pass",
            },
            "Encrypted because the subject contained [secure].",
        ),
        (
            "encrypt",
            "",
            "pgp",
            {"rules": [], "default": "pass", "trigger": "header X-Sealmail-Encrypt"},
            "Encrypted because the header X-Sealmail-Encrypt: yes was set.",
        ),
        (
            "encrypt",
            "",
            "portal",
            {"trigger": "header Sensitivity: Company-Confidential"},
            "Encrypted because the header Sensitivity: Company-Confidential was set.",
        ),
        (
            "hold",
            "cards",
            "hold",
            {
                "rules": [*TRAIL, {"rule": "cards", "hit": True}],
                "matched": "cards",
                "detectors": {"credit_card": 2, "iban": 0},
            },
            "Held because rule 'cards' found 2 credit card numbers.",
        ),
        (
            "encrypt",
            "ids",
            "smime",
            {"matched": "ids", "detectors": {"us_ssn": 1, "dictionary:legal": 3}},
            "Encrypted because rule 'ids' found 3 words of the dictionary 'legal' and "
            "1 US social security number.",
        ),
        (
            "reject",
            "exe",
            "reject",
            {"matched": "exe", "detectors": {}},
            "Rejected because rule 'exe' matched.",
        ),
        (
            "pass",
            "",
            "clear",
            {"rules": TRAIL, "matched": None, "default": "pass"},
            "Sent in clear: no rule matched and the tenant does not encrypt all external mail.",
        ),
        (
            "encrypt",
            "",
            "portal",
            {"rules": [], "default": "encrypt_external"},
            "Encrypted because no rule matched and the tenant encrypts all external mail.",
        ),
        (
            "require_tls",
            "banks",
            "tls",
            {"matched": "banks"},
            "Sent only over verified TLS because rule 'banks' matched.",
        ),
        (
            "encrypt",
            "",
            "portal",
            {"reroute": "require_tls"},
            "Sealed to the portal because verified TLS was required and the next server could "
            "not offer it.",
        ),
        (
            "pass",
            "",
            "clear",
            {"loop_stamp": True},
            "Relayed as it was: this gateway had already processed it (a valid loop stamp).",
        ),
        (
            "journal",
            "",
            "journal",
            {"journal": "header"},
            "Archived as an Exchange journal report; journal reports are never delivered.",
        ),
        (
            "pass",
            "",
            "clear",
            {"portal_origin": "reply", "portal_route": "internal"},
            "Written in the secure portal as a reply: delivered by mail, because the recipient is "
            "in one of the organisation's own domains.",
        ),
        (
            "encrypt",
            "",
            "portal",
            {"portal_origin": "forward", "portal_route": "external"},
            "Written in the secure portal as a forwarded message: protected like any sealed "
            "message, because the recipient is outside the organisation.",
        ),
        (
            "encrypt",
            "",
            "portal",
            {"portal_origin": "compose", "portal_route": "external"},
            "Written in the secure portal as a new message: protected like any sealed message, "
            "because the recipient is outside the organisation.",
        ),
    ],
)
def test_each_shape_reads_as_a_sentence(action, rule, disposition, data, first) -> None:  # noqa: ANN001
    said = _said(action, rule, disposition, data)
    assert said[0] == first
    for line in said:
        assert "{" not in line and "_" not in line.replace("X-Sealmail", ""), line


def test_details_after_the_reason() -> None:
    said = _said("encrypt", "", "pgp", {
        "rules": TRAIL, "default": "pass", "trigger": "subject keyword #secure",
        "upgraded_from": "pass", "wkd": "found", "retain_days": 3650,
        "regex_timeouts": ["rules[0].when.text_matches"], "limits_hit": ["max_parts"],
        "released_from": "deals", "size": 1234, "attachments": [{"type": "x", "size": 1}],
    })  # fmt: skip
    assert said == [
        "A compliance officer released it from the hold of rule 'deals'.",
        "Encrypted because the subject contained #secure.",
        "Without it, the policy would have sent it in clear.",
        "It was encrypted with the recipient's OpenPGP key.",
        "The recipient's key was found in their domain's Web Key Directory.",
        "The archive keeps it for 3650 days.",
        "1 pattern ran out of time and counted as no match.",
        "Only part of the message could be checked: it was too large or too deep.",
    ]
    trail = explain(PolicyDecision(action="pass", rule="", disposition="clear",
                                   explanation=json.dumps({"rules": [
                                       *TRAIL, {"rule": "off", "hit": False, "missed": "disabled"},
                                       {"rule": "x", "hit": False, "missed": "unless"},
                                       {"rule": "cards", "hit": True}]})))["trail"]  # fmt: skip
    assert trail == [
        "Rule 'deals' did not match: its “subject contains” condition was not met.",
        "Rule 'off' is switched off.",
        "Rule 'x' did not apply because of one of its exceptions.",
        "Rule 'cards' matched.",
    ]


def test_garbage_is_left_out_not_dumped() -> None:
    for raw in ("not json", "[1, 2]", '{"weird": {"nested": 1}}'):
        row = PolicyDecision(action="pass", rule="", disposition="clear", explanation=raw)
        said = explain(row)["sentences"]
        assert said and all("nested" not in s and "[1" not in s for s in said)
