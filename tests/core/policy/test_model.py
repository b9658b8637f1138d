"""The policy document: round trips, and errors that point at the right line and field."""

# ruff: noqa: E501 - the tables read best one case a line
from __future__ import annotations

import json

import pytest

from core.policy import PolicyError, dump_policy, parse_policy
from core.policy.model import parse_size

GOOD = """\
encrypt_external: false
groups: {finance: [cfo@acme.example, "*@finance.acme.example"]}
dictionaries: {legal: {words: [privileged, "attorney-client"], min_count: 2}}
rules:
  - name: card numbers
    when: {detector: credit_card, min_count: 1}
    action: encrypt
    method: auto
  - name: lawyers over TLS
    when: {recipient_domain: [lawfirm.example]}
    unless: {sender_group: finance}
    action: require_tls
  - name: big zip to anyone
    when: {attachment_extension: [zip], size_over: 10MB}
    action: hold
"""


def test_round_trip_yaml_and_json() -> None:
    policy = parse_policy(GOOD)
    assert [r.name for r in policy.rules] == [
        "card numbers",
        "lawyers over TLS",
        "big zip to anyone",
    ]
    assert policy.rules[2].when["size_over"] == 10 * 1024 * 1024
    for fmt in ("yaml", "json"):
        text = dump_policy(policy, fmt)
        assert parse_policy(text, fmt) == policy
        assert dump_policy(parse_policy(text, fmt), fmt) == text
    assert json.loads(dump_policy(policy, "json")) == policy.to_document()


def test_empty_document_is_the_default() -> None:
    assert parse_policy("").rules == ()
    assert parse_policy("{}", "json").encrypt_external is False


YAML_ERRORS = [
    # (document, line, field, words in the message)
    ("rules:\n  - name: a\n    action: pass\n  - name: b\n    when:\n      detector: ccn\n    action: pass\n",
     6, "rules[1].when.detector", "unknown detector 'ccn'"),
    ("rules:\n  - name: a\n    action: explode\n", 3, "rules[0].action", "unknown action"),
    ("rules:\n  - name: a\n    action: pass\n    method: pgp\n", 4, "rules[0].method",
     "only applies to action encrypt"),
    ("rules:\n  - name: a\n    when: {colour: red}\n    action: pass\n", 3, "rules[0].when.colour",
     "unknown key 'colour'"),
    ("rules:\n  - name: a\n    when:\n      text_matches: '(unclosed'\n    action: pass\n", 4,
     "rules[0].when.text_matches", "invalid regular expression"),
    ("rules:\n  - name: a\n    when: {sender_group: sales}\n    action: pass\n", 3,
     "rules[0].when.sender_group", "unknown group 'sales'"),
    ("rules:\n  - name: a\n    when: {size_over: lots}\n    action: pass\n", 3,
     "rules[0].when.size_over", "expected a size"),
    ("rules:\n  - name: a\n    action: pass\n  - name: a\n    action: hold\n", 4, "rules[1].name",
     "duplicate rule name"),
    ("rules:\n  - name: a\n    when: {min_count: 2}\n    action: pass\n", 3,
     "rules[0].when.min_count", "needs a detector"),
    ("encrypt_external: maybe\n", 1, "encrypt_external", "expected true or false"),
    ("rules:\n  - when: {}\n    action: pass\n", 2, "rules[0]", "missing 'name'"),
    ("rules:\n  - name: a\n    action: [pass\n", 4, "", "expected"),  # YAML syntax
    ("dictionaries:\n  legal: {min_count: 2}\n", 2, "dictionaries.legal", "missing 'words'"),
]  # fmt: skip


@pytest.mark.parametrize(("doc", "line", "field", "words"), YAML_ERRORS)
def test_yaml_errors_point_at_line_and_field(doc: str, line: int, field: str, words: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(doc)
    err = info.value
    assert (err.line, err.field) == (line, field), str(err)
    assert words in str(err)
    assert str(err).startswith(f"line {line}: ") and "\n" not in str(err)


JSON_DOC = """{
  "rules": [
    {"name": "a", "action": "pass"},
    {
      "name": "b",
      "when": {
        "detector": "ccn"
      },
      "action": "pass"
    }
  ]
}"""


def test_json_errors_point_at_line_and_field() -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(JSON_DOC, "json")
    assert (info.value.line, info.value.field) == (7, "rules[1].when.detector")
    assert str(info.value).startswith("line 7: rules[1].when.detector: unknown detector 'ccn'")
    with pytest.raises(PolicyError) as syntax:
        parse_policy('{\n  "rules": [\n    {"name": "a",}\n  ]\n}', "json")
    assert syntax.value.line == 3
    with pytest.raises(PolicyError, match="duplicate key 'rules'"):
        parse_policy('{"rules": [], "rules": []}', "json")


def test_alias_bomb_is_refused() -> None:
    doc = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for n in range(1, 8):
        doc += f"{chr(97 + n)}: &{chr(97 + n)} [*{chr(96 + n)}, *{chr(96 + n)}, *{chr(96 + n)}, *{chr(96 + n)}, *{chr(96 + n)}, *{chr(96 + n)}, *{chr(96 + n)}, *{chr(96 + n)}, *{chr(96 + n)}, *{chr(96 + n)}]\n"  # noqa: E501
    with pytest.raises(PolicyError, match="too large"):
        parse_policy(doc)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("10MB", 10 * 1024**2),
        ("500 KB", 500 * 1024),
        ("2048", 2048),
        (4096, 4096),
        ("1GiB", 1024**3),
    ],
)
def test_sizes(text: object, size: int) -> None:
    assert parse_size(text) == size
