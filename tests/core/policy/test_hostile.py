"""A hostile message or pattern cannot stall the worker: a 1 GB zip bomb and a
catastrophically backtracking pattern each cost < 2 s, and the message is still decided
per policy (the rest of the policy applies; the limit hit is in the explanation)."""

from __future__ import annotations

import time

import pytest

from core.policy import Limits, evaluate, extract_facts, parse_policy
from tests.core.policy.mail import mail, make_zip, make_zip_bomb

CARD = "4111 1111 1111 1111"


@pytest.fixture(scope="module")
def bomb() -> bytes:
    data = make_zip_bomb(1024**3)
    assert len(data) < 2 * 1024 * 1024
    return data


POLICY = parse_policy(
    """
rules:
  - name: backtracking
    when: {text_matches: '(a+)+$'}
    action: reject
  - name: cards
    when: {detector: credit_card}
    action: encrypt
  - name: archives
    when: {attachment_type: zip}
    action: hold
"""
)


def _decide(raw: bytes, limits: Limits = Limits()) -> tuple[float, list]:  # noqa: B008
    start = time.monotonic()
    facts = extract_facts(raw, limits)
    decisions = evaluate(
        POLICY,
        facts,
        mail_from="a@acme.example",
        recipients=["b@x.example"],
        tenant_domains=["acme.example"],
    )
    return time.monotonic() - start, decisions


@pytest.mark.parametrize("force_read", [False, True], ids=["declared-ratio", "inflating"])
def test_zip_bomb_is_bounded_and_the_message_still_decided(bomb: bytes, force_read: bool) -> None:
    # force_read: a limit on declared sizes alone is not trusted; reading stops too
    limits = Limits(max_ratio=10**9) if force_read else Limits()
    raw = mail(body="see attached", attachments=[("backup.zip", "application/zip", bomb)])
    elapsed, [d] = _decide(raw, limits)
    assert elapsed < 2.0
    assert (d.action, d.rule) == ("hold", "archives")
    assert d.explanation["limits_hit"]
    hit = " ".join(d.explanation["limits_hit"])
    assert ("max_member_bytes" in hit) if force_read else ("max_ratio" in hit)
    assert "backup.zip" not in hit  # names are content: never in the stored explanation
    raw = mail(body=f"card {CARD}", attachments=[("backup.zip", "application/zip", bomb)])
    elapsed, [d] = _decide(raw, limits)
    assert elapsed < 2.0 and (d.action, d.rule) == ("encrypt", "cards")


def test_zip_limits_on_members_and_depth() -> None:
    many = make_zip({f"f{i}.txt": b"x" for i in range(50)})
    facts = extract_facts(
        mail(attachments=[("m.zip", "application/zip", many)]), Limits(max_members=10)
    )
    assert "max_members" in facts.limits_hit
    nested = b"4111111111111111"
    for i in range(6):
        nested = make_zip({f"level{i}.zip" if i else "card.txt": nested})
    facts = extract_facts(mail(attachments=[("n.zip", "application/zip", nested)]))
    assert any(h.startswith("max_depth") for h in facts.limits_hit)


def test_catastrophic_pattern_times_out_and_counts_as_no_match() -> None:
    raw = mail(body="a" * 30_000 + "!\n" + f"card {CARD}\n")
    elapsed, [d] = _decide(raw)
    assert elapsed < 2.0
    assert (d.action, d.rule) == ("encrypt", "cards")
    assert d.explanation["rules"][0] == {
        "rule": "backtracking",
        "hit": False,
        "missed": "when.text_matches",
    }
    assert d.explanation["regex_timeouts"] == ["rules[0].when: pattern timed out"]


def test_many_recipients_share_one_regex_budget() -> None:
    raw = mail(body="a" * 30_000 + "!")
    start = time.monotonic()
    facts = extract_facts(raw)
    got = evaluate(
        POLICY,
        facts,
        mail_from="a@acme.example",
        recipients=[f"r{i}@x.example" for i in range(50)],
        tenant_domains=[],
    )
    assert time.monotonic() - start < 2.0
    assert {d.action for d in got} == {"pass"}


def test_broken_pdf_and_zip_do_not_raise() -> None:
    raw = mail(
        attachments=[
            ("x.pdf", "application/pdf", b"%PDF-1.4\ngarbage"),
            ("y.zip", "application/zip", b"PK\x03\x04broken"),
        ]
    )
    facts = extract_facts(raw)
    assert [a.type for a in facts.attachments] == ["pdf", "zip"]
    assert any("unreadable" in h for h in facts.limits_hit)
