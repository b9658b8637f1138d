"""Table-driven: each condition and action of SPEC §4, with encodings that hide content
(RFC 2047, quoted-printable soft breaks, PDF, zip) and checks that must hold (Luhn, mod 97)."""

# ruff: noqa: E501 - the tables read best one case a line
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from core.policy import evaluate, extract_facts, parse_policy
from tests.core.policy.mail import mail, make_pdf, make_zip, raw_mail

CARD = "4111 1111 1111 1111"  # Luhn-valid Visa test number
BAD_CARD = "4111 1111 1111 1112"  # one digit off: fails Luhn
IBAN = "GB82 WEST 1234 5698 7654 32"
BAD_IBAN = "GB82 WEST 1234 5698 7654 33"
DOMAINS = ["acme.example"]
EXT = "bob@partner.example"

BASE = {
    "groups": {"finance": ["cfo@acme.example", "*@finance.acme.example"]},
    "dictionaries": {"legal": {"words": ["privileged", "attorney-client"], "min_count": 2}},
}


@dataclass
class Case:
    id: str
    when: dict[str, Any]
    message: bytes
    hit: bool
    unless: dict[str, Any] | None = None
    mail_from: str = "alice@acme.example"
    rcpt: str = EXT
    extra: dict[str, Any] = field(default_factory=dict)


QP_SPLIT = raw_mail(
    """
From: alice@acme.example
Subject: payment
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable
""",
    "Please charge the card 4111 1111 11=\n11 1111 for the invoice.\n",
)
FOLDED_SUBJECT = raw_mail(
    """
From: alice@acme.example
Subject: =?utf-8?q?Quarterly_figures_=E2=80=93_strictly_con?=
 =?utf-8?b?ZmlkZW50aWFs?=
Content-Type: text/plain

body
""",
    "",
)

CASES = [
    Case("subject rfc2047 folded", {"subject_contains": "CONFIDENTIAL"}, FOLDED_SUBJECT, True),
    Case("subject miss", {"subject_contains": ["secret", "private"]}, mail(subject="Lunch"), False),
    Case("regex body", {"text_matches": r"(?i)project\s+falcon"}, mail(body="about PROJECT  Falcon"), True),
    Case("regex html inline tags", {"text_matches": "falcon"}, mail(body="x", html="<p>fal<b></b>con</p>"), True),
    Case("regex html text", {"text_matches": "falcon plan"}, mail(body="x", html="<p>falcon <i>plan</i></p>"), True),
    Case("regex min_count", {"text_matches": "apple", "min_count": 3}, mail(body="apple apple"), False),
    Case("card plain", {"detector": "credit_card"}, mail(body=f"card {CARD} thanks"), True),
    Case("card qp soft break", {"detector": "credit_card"}, QP_SPLIT, True),
    Case("card luhn fails", {"detector": "credit_card"}, mail(body=f"card {BAD_CARD}"), False),
    Case("card in pdf", {"detector": "credit_card"},
         mail(attachments=[("statement.pdf", "application/pdf", make_pdf(f"Card {CARD} due"))]), True),
    Case("card in pdf luhn fails", {"detector": "credit_card"},
         mail(attachments=[("statement.pdf", "application/pdf", make_pdf(f"Card {BAD_CARD}"))]), False),
    Case("card in zip", {"detector": "credit_card"},
         mail(attachments=[("a.zip", "application/zip", make_zip({"notes/c.txt": CARD.encode()}))]), True),
    Case("card in zip in zip", {"detector": "credit_card"},
         mail(attachments=[("a.zip", "application/zip",
                            make_zip({"in.zip": make_zip({"c.csv": f"x,{CARD}".encode()})}))]), True),
    Case("card min_count 2", {"detector": "credit_card", "min_count": 2}, mail(body=CARD), False),
    Case("iban valid", {"detector": "iban"}, mail(body=f"pay to {IBAN} please"), True),
    Case("iban bad checksum", {"detector": "iban"}, mail(body=f"pay to {BAD_IBAN} please"), False),
    Case("ssn", {"detector": "us_ssn"}, mail(body="SSN 123-45-6789"), True),
    Case("ssn never issued", {"detector": "us_ssn"}, mail(body="SSN 000-45-6789"), False),
    Case("nino", {"detector": "uk_nino"}, mail(body="NI number AB 12 34 56 C"), True),
    Case("emails min_count", {"detector": "email_addresses", "min_count": 3},
         mail(body="a@x.example b@x.example c@y.example"), True),
    Case("emails too few", {"detector": "email_addresses", "min_count": 3},
         mail(body="a@x.example b@x.example"), False),
    Case("dictionary threshold met", {"detector": "dictionary:legal"},
         mail(body="Privileged and Attorney-Client communication"), True),
    Case("dictionary below threshold", {"detector": "dictionary:legal"},
         mail(body="privileged information"), False),
    Case("detector any of list", {"detector": ["us_ssn", "iban"]}, mail(body=IBAN), True),
    Case("attachment name glob", {"attachment_name": "payroll*.xlsx"},
         mail(attachments=[("Payroll-2025.XLSX", "application/octet-stream", b"x")]), True),
    Case("attachment extension", {"attachment_extension": [".zip", "7z"]},
         mail(attachments=[("a.zip", "application/zip", make_zip({"a": b"b"}))]), True),
    Case("attachment extension in zip", {"attachment_extension": "exe"},
         mail(attachments=[("a.zip", "application/zip", make_zip({"run.exe": b"MZ\x90\x00"}))]), True),
    Case("attachment type from content", {"attachment_type": "pdf"},
         mail(attachments=[("notes.txt", "text/plain", make_pdf("hi"))]), True),
    Case("attachment type not declared", {"attachment_type": "pdf"},
         mail(attachments=[("fake.pdf", "application/pdf", b"MZ\x90\x00\x03")]), False),
    Case("attachment type exe", {"attachment_type": "exe"},
         mail(attachments=[("fake.pdf", "application/pdf", b"MZ\x90\x00\x03")]), True),
    Case("sender glob", {"sender": "*@finance.acme.example"}, mail(), True,
         mail_from="Joe@Finance.acme.example"),
    Case("sender miss", {"sender": "cfo@acme.example"}, mail(), False),
    Case("sender group", {"sender_group": "finance"}, mail(), True, mail_from="cfo@acme.example"),
    Case("recipient", {"recipient": "bob@*"}, mail(), True),
    Case("recipient domain", {"recipient_domain": ["lawfirm.example", "*.partner.example"]},
         mail(), False),
    Case("recipient domain hit", {"recipient_domain": "partner.example"}, mail(), True),
    Case("header equals, name any case", {"header": {"x-classification": "Confidential"}},
         mail(headers={"X-Classification": "confidential"}), True),
    Case("header differs", {"header": {"X-Classification": "confidential"}},
         mail(headers={"X-Classification": "public"}), False),
    Case("size over", {"size_over": "1KB"}, mail(body="x" * 2000), True),
    Case("size under", {"size_under": "1KB"}, mail(body="x" * 2000), False),
    Case("conditions are ANDed", {"detector": "credit_card", "recipient_domain": "other.example"},
         mail(body=CARD), False),
    Case("unless excludes", {"detector": "credit_card"}, mail(body=CARD), False,
         unless={"sender_group": "finance"}, mail_from="cfo@acme.example"),
    Case("unless does not hold", {"detector": "credit_card"}, mail(body=CARD), True,
         unless={"sender_group": "finance"}),
    Case("empty when matches all", {}, mail(), True),
]  # fmt: skip


def _policy(rules: list[dict[str, Any]], **top: Any) -> Any:
    return parse_policy(json.dumps({**BASE, **top, "rules": rules}), "json")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_condition(case: Case) -> None:
    rule: dict[str, Any] = {"name": "r", "when": case.when, "action": "encrypt"}
    if case.unless:
        rule["unless"] = case.unless
    policy = _policy([rule])
    facts = extract_facts(case.message)
    [d] = evaluate(
        policy, facts, mail_from=case.mail_from, recipients=[case.rcpt], tenant_domains=DOMAINS
    )
    assert (d.action, d.rule) == (("encrypt", "r") if case.hit else ("pass", "")), d.explanation
    assert d.explanation["rules"][0]["hit"] is case.hit
    text = json.dumps(d.explanation)
    for secret in ("4111", "6789", "WEST", "AB 12"):
        assert secret not in text  # kinds and counts, never the matched text


ACTIONS = [
    ({"action": "encrypt", "method": "pgp"}, ("encrypt", "pgp")),
    ({"action": "encrypt"}, ("encrypt", "auto")),
    ({"action": "require_tls"}, ("require_tls", "")),
    ({"action": "hold"}, ("hold", "")),
    ({"action": "reject"}, ("reject", "")),
    ({"action": "pass"}, ("pass", "")),
]


@pytest.mark.parametrize(
    ("rule", "expected"), ACTIONS, ids=[a[0]["action"] + "-" + a[1][1] for a in ACTIONS]
)
def test_actions(rule: dict[str, Any], expected: tuple[str, str]) -> None:
    policy = _policy([{"name": "r", "when": {"detector": "credit_card"}, **rule}])
    [d] = evaluate(
        policy,
        extract_facts(mail(body=CARD)),
        mail_from="a@acme.example",
        recipients=[EXT],
        tenant_domains=DOMAINS,
    )
    assert (d.action, d.method, d.rule) == (*expected, "r")


def test_first_match_wins_and_later_rules_are_not_evaluated() -> None:
    policy = _policy(
        [
            {"name": "off", "enabled": False, "when": {}, "action": "reject"},
            {"name": "no", "when": {"subject_contains": "zzz"}, "action": "reject"},
            {"name": "cards", "when": {"detector": "credit_card"}, "action": "hold"},
            {"name": "anything", "when": {}, "action": "reject"},
        ]
    )
    [d] = evaluate(
        policy,
        extract_facts(mail(body=CARD)),
        mail_from="a@acme.example",
        recipients=[EXT],
        tenant_domains=DOMAINS,
    )
    assert (d.action, d.rule) == ("hold", "cards")
    assert d.explanation["rules"] == [
        {"rule": "off", "hit": False, "missed": "disabled"},
        {"rule": "no", "hit": False, "missed": "when.subject_contains"},
        {"rule": "cards", "hit": True},
    ]
    assert d.explanation["detectors"] == {"credit_card": 1}


def test_per_recipient_decisions_differ() -> None:
    policy = _policy(
        [
            {
                "name": "law",
                "when": {"recipient_domain": "lawfirm.example"},
                "action": "require_tls",
            },
            {
                "name": "board",
                "when": {"recipient": "board@*"},
                "action": "encrypt",
                "method": "smime",
            },
        ]
    )
    rcpts = ["ann@lawfirm.example", "board@partner.example", "carl@partner.example"]
    got = evaluate(
        policy,
        extract_facts(mail()),
        mail_from="a@acme.example",
        recipients=rcpts,
        tenant_domains=DOMAINS,
    )
    assert [(d.rcpt, d.action, d.method) for d in got] == [
        ("ann@lawfirm.example", "require_tls", ""),
        ("board@partner.example", "encrypt", "smime"),
        ("carl@partner.example", "pass", ""),
    ]


def test_encrypt_external_is_the_default_for_external_recipients_only() -> None:
    policy = _policy(
        [{"name": "p", "when": {"subject_contains": "newsletter"}, "action": "pass"}],
        encrypt_external=True,
    )
    rcpts = [EXT, "colleague@acme.example", "x@eu.acme.example"]
    got = evaluate(
        policy,
        extract_facts(mail()),
        mail_from="a@acme.example",
        recipients=rcpts,
        tenant_domains=DOMAINS,
    )
    assert [(d.action, d.method) for d in got] == [("encrypt", "auto"), ("pass", ""), ("pass", "")]
    assert got[0].explanation["default"] == "encrypt_external"
    news = evaluate(
        policy,
        extract_facts(mail(subject="Newsletter")),
        mail_from="a@acme.example",
        recipients=[EXT],
        tenant_domains=DOMAINS,
    )
    assert (news[0].action, news[0].rule) == ("pass", "p")  # a rule beats the default
