"""The interpreter: walk the rules in order for each recipient, first match wins, and say
why — every rule looked at (hit, or which condition missed), detector counts (never what
they found), patterns that ran out of time, extraction limits that were hit."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from core.policy.conditions import CHECKS, PER_RECIPIENT, Ctx, MessageScope, detector_count
from core.policy.detectors import BUILTIN
from core.policy.extract import MessageFacts
from core.policy.model import Policy, Rule


@dataclasses.dataclass(frozen=True)
class Decision:
    rcpt: str
    action: str  # encrypt | require_tls | hold | reject | pass
    method: str  # auto | portal | pgp | smime | pdf ("" unless encrypt)
    rule: str  # the rule that matched, "" for the default
    explanation: dict[str, Any]


def evaluate(
    policy: Policy,
    facts: MessageFacts,
    *,
    mail_from: str,
    recipients: list[str],
    tenant_domains: list[str],
    detect: Sequence[str] = (),
) -> list[Decision]:
    """One decision per recipient. ``detect`` names built-in detectors to count even when no
    rule asks (a tenant's step-up setting reads their counts in the explanation)."""
    scope = MessageScope(policy, facts, mail_from.strip().lower())
    domains = {d.lower().rstrip(".") for d in tenant_domains}
    decisions = []
    for rcpt in recipients:
        decisions.append(_decide_one(scope, rcpt, domains))
    for name in detect:
        if name in BUILTIN:
            detector_count(scope, name)
    shared = _shared(scope)
    return [dataclasses.replace(d, explanation={**d.explanation, **shared}) for d in decisions]


def _decide_one(scope: MessageScope, rcpt: str, domains: set[str]) -> Decision:
    trail: list[dict[str, Any]] = []
    address = rcpt.strip().lower()
    for index, rule in enumerate(scope.policy.rules):
        if not rule.enabled:
            trail.append({"rule": rule.name, "hit": False, "missed": "disabled"})
            continue
        ctx = Ctx(scope, address)
        missed = _missed(ctx, rule, index)
        if missed is None:
            trail.append({"rule": rule.name, "hit": True})
            method = rule.method if rule.action == "encrypt" else ""
            explanation: dict[str, Any] = {"rules": trail, "matched": rule.name}
            if rule.brand:
                explanation["brand"] = rule.brand
            if rule.retain_days:
                explanation["retain_days"] = rule.retain_days  # the archive keeps it longer
            return Decision(rcpt, rule.action, method, rule.name, explanation)
        trail.append({"rule": rule.name, "hit": False, "missed": missed})
    external = _domain(address) not in domains and not any(
        _domain(address).endswith("." + d) for d in domains
    )
    if scope.policy.encrypt_external and external:
        default = {"matched": None, "default": "encrypt_external"}
        return Decision(rcpt, "encrypt", "auto", "", {"rules": trail, **default})
    return Decision(rcpt, "pass", "", "", {"rules": trail, "matched": None, "default": "pass"})


def _missed(ctx: Ctx, rule: Rule, index: int) -> str | None:
    """``None`` when the rule applies, else the first condition that kept it out."""
    for block in ("when", "unless"):
        conds = rule.when if block == "when" else rule.unless
        ctx.where = f"rules[{index}].{block}"
        ctx.threshold = conds.get("min_count")
        held = True
        for key, value in conds.items():
            if not _check(ctx, block, key, value):
                held = False
                if block == "when":
                    return f"when.{key}"
                break
        if block == "unless" and conds and held:
            return "unless"
    return None


def _check(ctx: Ctx, block: str, key: str, value: Any) -> bool:
    if key in PER_RECIPIENT:
        return CHECKS[key](ctx, value)
    memo_key = (block, key, repr(value), ctx.threshold)
    memo = ctx.scope.memo
    if memo_key not in memo:
        memo[memo_key] = CHECKS[key](ctx, value)
    return memo[memo_key]


def _domain(address: str) -> str:
    # not core.addresses.domain_of: the rcpt comes stripped and lower-cased, and a space after
    # the @ ("a@ acme.example") must leave the domain foreign (encrypted), not make it ours
    return address.rpartition("@")[2].rstrip(".")


def _shared(scope: MessageScope) -> dict[str, Any]:
    facts = scope.facts
    out: dict[str, Any] = {
        "detectors": dict(sorted(scope.detector_counts.items())),
        "size": facts.size,
        # kinds and sizes only: attachment names are message content, and this
        # explanation is stored in clear (policy_decisions.explanation)
        "attachments": [
            {"type": a.type, "size": a.size, **({"nested": True} if a.container else {})}
            for a in facts.attachments[:50]
        ],
    }
    if scope.regex_timeouts:
        out["regex_timeouts"] = scope.regex_timeouts
    if facts.limits_hit:
        # the limit's name only: a hit may name an attachment or archive member ("max_ratio
        # (backup.zip: a.txt)"), and names are content, never kept in clear
        out["limits_hit"] = list(dict.fromkeys(h.split(" (", 1)[0] for h in facts.limits_hit))
    return out
