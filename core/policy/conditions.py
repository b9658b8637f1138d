"""One check per condition key of a rule's ``when``/``unless``: ``check(ctx, value) -> bool``.

A list value matches when any element does. Conditions about the message are computed once
per message (``ctx.memo``); ``recipient*`` ones differ per recipient.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import time
from collections.abc import Callable
from typing import Any

import regex

from core.policy.detectors import BUILTIN, dictionary_counter
from core.policy.extract import MessageFacts
from core.policy.model import Policy

REGEX_TIMEOUT = 0.25  # seconds per pattern
REGEX_BUDGET = 1.0  # seconds for all patterns of one message
REGEX_TEXT = 1024 * 1024  # characters a tenant pattern may look at


@dataclasses.dataclass
class MessageScope:
    """What every recipient of one message shares, computed lazily."""

    policy: Policy
    facts: MessageFacts
    mail_from: str
    memo: dict[Any, Any] = dataclasses.field(default_factory=dict)
    detector_counts: dict[str, int] = dataclasses.field(default_factory=dict)
    regex_timeouts: list[str] = dataclasses.field(default_factory=list)
    regex_spent: float = 0.0
    compiled: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Ctx:
    scope: MessageScope
    rcpt: str
    where: str = ""  # the rule and block being checked, for the explanation
    threshold: int | None = None  # the block's min_count


def _glob_any(value: str, patterns: tuple[str, ...]) -> bool:
    value = value.lower()
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)


def _domain(address: str) -> str:
    # not core.addresses.domain_of: no strip(), so "a@ x.example" never matches x.example
    return address.rpartition("@")[2].lower().rstrip(".")


def _in_group(ctx: Ctx, address: str, names: tuple[str, ...]) -> bool:
    groups = ctx.scope.policy.groups
    return any(_glob_any(address, groups[n]) for n in names)


def detector_count(scope: MessageScope, name: str) -> int:
    if name not in scope.detector_counts:
        text = scope.facts.text
        if name.startswith("dictionary:"):
            counter = dictionary_counter(scope.policy.dictionaries[name.split(":", 1)[1]].words)
            scope.detector_counts[name] = counter(text, _lower_ascii(scope, text))
        else:
            scope.detector_counts[name] = BUILTIN[name](text)
    return scope.detector_counts[name]


def _lower_ascii(scope: MessageScope, text: str) -> str | None:
    """The message's text lower-cased once for all its dictionaries (ASCII text only)."""
    if not text.isascii():
        return None
    if ("lower",) not in scope.memo:
        scope.memo[("lower",)] = text.lower()
    return scope.memo[("lower",)]


def _threshold(ctx: Ctx, name: str) -> int:
    if ctx.threshold is not None:
        return ctx.threshold
    if name.startswith("dictionary:"):
        return ctx.scope.policy.dictionaries[name.split(":", 1)[1]].min_count
    return 1


def check_detector(ctx: Ctx, names: tuple[str, ...]) -> bool:
    return any(detector_count(ctx.scope, n) >= _threshold(ctx, n) for n in names)


def pattern_count(scope: MessageScope, pattern: str, where: str) -> int:
    """Matches of a tenant's pattern within a time and size budget; a timeout counts as no
    match and is recorded."""
    key = ("re", pattern)
    if key in scope.memo:
        return scope.memo[key]
    remaining = REGEX_BUDGET - scope.regex_spent
    count = 0
    if remaining <= 0.001:
        scope.regex_timeouts.append(f"{where}: regex budget spent")
    else:
        compiled = scope.compiled.get(pattern)
        if compiled is None:
            compiled = scope.compiled[pattern] = regex.compile(pattern, regex.V0)
        text = scope.facts.text[:REGEX_TEXT]
        start = time.monotonic()
        try:
            for _ in compiled.finditer(text, timeout=min(REGEX_TIMEOUT, remaining)):
                count += 1
        except TimeoutError:
            count = 0
            scope.regex_timeouts.append(f"{where}: pattern timed out")
        scope.regex_spent += time.monotonic() - start
    scope.memo[key] = count
    return count


def check_text_matches(ctx: Ctx, patterns: tuple[str, ...]) -> bool:
    need = ctx.threshold or 1
    return any(pattern_count(ctx.scope, p, ctx.where) >= need for p in patterns)


def check_header(ctx: Ctx, wanted: tuple[tuple[str, tuple[str, ...]], ...]) -> bool:
    facts = ctx.scope.facts
    for name, values in wanted:
        present = [v.lower() for v in facts.header_values(name)]
        if not any(v in values for v in present):
            return False
    return True


def _attachments(ctx: Ctx, test: Callable[[Any], bool]) -> bool:
    return any(test(a) for a in ctx.scope.facts.attachments)


CHECKS: dict[str, Callable[[Ctx, Any], bool]] = {
    "subject_contains": lambda ctx, v: any(w in ctx.scope.facts.subject.lower() for w in v),
    "text_matches": check_text_matches,
    "detector": check_detector,
    "min_count": lambda ctx, v: True,  # a modifier of detector / text_matches
    "attachment_name": lambda ctx, v: _attachments(ctx, lambda a: _glob_any(a.name, v)),
    "attachment_extension": lambda ctx, v: _attachments(ctx, lambda a: a.extension in v),
    "attachment_type": lambda ctx, v: _attachments(ctx, lambda a: a.type in v),
    "sender": lambda ctx, v: _glob_any(ctx.scope.mail_from, v),
    "sender_group": lambda ctx, v: _in_group(ctx, ctx.scope.mail_from, v),
    "recipient": lambda ctx, v: _glob_any(ctx.rcpt, v),
    "recipient_group": lambda ctx, v: _in_group(ctx, ctx.rcpt, v),
    "recipient_domain": lambda ctx, v: any(fnmatch.fnmatchcase(_domain(ctx.rcpt), d) for d in v),
    "header": check_header,
    "size_over": lambda ctx, v: ctx.scope.facts.size > v,
    "size_under": lambda ctx, v: ctx.scope.facts.size < v,
}
PER_RECIPIENT = frozenset({"recipient", "recipient_group", "recipient_domain"})
