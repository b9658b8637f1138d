"""The policy document users write by hand (docs/POLICY.md): parsed, validated, and written
back out. Every error is one line naming the line and the field."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from typing import Any

import regex
import yaml

from core.config.values import parse_retention_days
from core.policy.source import Path, PolicyError, Source, load

ACTIONS = ("encrypt", "require_tls", "hold", "reject", "pass")
METHODS = ("auto", "portal", "pgp", "smime", "pdf")
BUILTIN_DETECTORS = ("credit_card", "us_ssn", "iban", "uk_nino", "email_addresses")
ATTACHMENT_TYPES = (
    "pdf", "zip", "docx", "xlsx", "pptx", "msoffice", "gzip", "rar", "7z", "png", "jpeg",
    "gif", "exe", "elf", "html", "xml", "text", "binary",
)  # fmt: skip
MAX_PATTERN = 1000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


@dataclasses.dataclass(frozen=True)
class Dictionary:
    words: tuple[str, ...]
    min_count: int = 1


_BRAND = re.compile(r"^[a-z0-9][a-z0-9._-]{0,49}$")


@dataclasses.dataclass(frozen=True)
class Rule:
    name: str
    action: str
    method: str = "auto"  # only meaningful for encrypt
    when: dict[str, Any] = dataclasses.field(default_factory=dict)
    unless: dict[str, Any] = dataclasses.field(default_factory=dict)
    description: str = ""
    enabled: bool = True
    retain_days: int | None = None  # ``retain: 10y``: keep the archive copy at least this long
    brand: str = ""  # ``brand: legal``: the tenant's brand its notices wear (issue 13)


@dataclasses.dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...] = ()
    encrypt_external: bool = False
    groups: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    dictionaries: dict[str, Dictionary] = dataclasses.field(default_factory=dict)

    def to_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"encrypt_external": self.encrypt_external}
        if self.groups:
            doc["groups"] = {k: list(v) for k, v in self.groups.items()}
        if self.dictionaries:
            doc["dictionaries"] = {
                k: {"words": list(d.words), "min_count": d.min_count}
                for k, d in self.dictionaries.items()
            }
        doc["rules"] = [_rule_doc(r) for r in self.rules]
        return doc

    def without_action(self, action: str) -> Policy:
        return dataclasses.replace(self, rules=tuple(r for r in self.rules if r.action != action))


def parse_policy(text: str, fmt: str = "yaml") -> Policy:
    """Parse and validate a policy document; raises :class:`PolicyError`."""
    src = load(text, fmt)
    return _Validator(src).policy()


def dump_policy(policy: Policy, fmt: str = "yaml") -> str:
    doc = policy.to_document()
    if fmt == "json":
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    if fmt == "yaml":
        return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)
    raise PolicyError(f"unknown format {fmt!r} (expected yaml or json)")


def parse_size(value: Any) -> int:
    """``10MB``, ``500 KiB``, ``2048`` → bytes (K/M/G are powers of 1024)."""
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int) and value >= 0:
        return value
    m = _SIZE.match(str(value))
    if not m:
        raise ValueError
    return int(float(m.group(1)) * _UNITS[m.group(2)[:1].lower()])


def format_size(n: int) -> str | int:
    for unit, factor in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if n and n % factor == 0:
            return f"{n // factor}{unit}"
    return n


# --- conditions: how each key of `when`/`unless` is read and written --------------------------


def _rule_doc(rule: Rule) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": rule.name}
    if rule.description:
        doc["description"] = rule.description
    if not rule.enabled:
        doc["enabled"] = False
    doc["when"] = _conditions_doc(rule.when)
    if rule.unless:
        doc["unless"] = _conditions_doc(rule.unless)
    doc["action"] = rule.action
    if rule.action == "encrypt":
        doc["method"] = rule.method
    if rule.retain_days:
        doc["retain"] = f"{rule.retain_days}d"
    if rule.brand:
        doc["brand"] = rule.brand
    return doc


def _conditions_doc(conds: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in conds.items():
        if key in ("size_over", "size_under"):
            out[key] = format_size(value)
        elif key == "header":
            out[key] = {name: list(values) for name, values in value}
        elif isinstance(value, tuple):
            out[key] = list(value)
        else:
            out[key] = value
    return out


class _Validator:
    def __init__(self, src: Source) -> None:
        self.src = src

    def fail(self, path: Path, message: str) -> PolicyError:
        return self.src.error(path, message)

    def mapping(
        self, value: Any, path: Path, allowed: tuple[str, ...] | None = None
    ) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a mapping, got {_kind(value)}")
        for key in value:
            if allowed is not None and key not in allowed:
                raise self.fail(
                    (*path, key), f"unknown key {key!r} (expected one of {', '.join(allowed)})"
                )
        return value

    def strings(self, value: Any, path: Path, *, lower: bool = False) -> tuple[str, ...]:
        items = value if isinstance(value, list) else [value]
        if not items:
            raise self.fail(path, "expected at least one value")
        out = []
        for i, item in enumerate(items):
            where = (*path, i) if isinstance(value, list) else path
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                raise self.fail(where, f"expected text, got {_kind(item)}")
            text = str(item).strip()
            if not text:
                raise self.fail(where, "empty value")
            out.append(text.lower() if lower else text)
        return tuple(out)

    def count(self, value: Any, path: Path) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.fail(path, f"expected a whole number of at least 1, got {value!r}")
        return value

    def policy(self) -> Policy:
        doc = self.mapping(
            self.src.value, (), ("version", "encrypt_external", "groups", "dictionaries", "rules")
        )
        if doc.get("version", 1) != 1:
            raise self.fail(("version",), f"unsupported version {doc['version']!r} (expected 1)")
        external = doc.get("encrypt_external", False)
        if not isinstance(external, bool):
            raise self.fail(("encrypt_external",), f"expected true or false, got {external!r}")
        groups = {}
        for name, members in self.mapping(doc.get("groups"), ("groups",)).items():
            self.name(name, ("groups", name))
            groups[name] = self.strings(members, ("groups", name), lower=True)
        dictionaries = {}
        for name, body in self.mapping(doc.get("dictionaries"), ("dictionaries",)).items():
            self.name(name, ("dictionaries", name))
            path = ("dictionaries", name)
            body = self.mapping(body, path, ("words", "min_count"))
            if "words" not in body:
                raise self.fail(path, "missing 'words'")
            words = self.strings(body["words"], (*path, "words"))
            n = self.count(body.get("min_count", 1), (*path, "min_count"))
            dictionaries[name] = Dictionary(words, n)
        self.groups, self.dictionaries = groups, dictionaries
        raw_rules = doc.get("rules") or []
        if not isinstance(raw_rules, list):
            raise self.fail(("rules",), f"expected a list of rules, got {_kind(raw_rules)}")
        rules = tuple(self.rule(r, ("rules", i)) for i, r in enumerate(raw_rules))
        seen: dict[str, int] = {}
        for i, r in enumerate(rules):
            if r.name in seen:
                raise self.fail(("rules", i, "name"), f"duplicate rule name {r.name!r}")
            seen[r.name] = i
        return Policy(rules, external, groups, dictionaries)

    def name(self, name: str, path: Path) -> None:
        if not _NAME.match(name):
            raise self.fail(path, f"invalid name {name!r} (letters, digits, _ . -)")

    def rule(self, value: Any, path: Path) -> Rule:
        keys = (
            "name",
            "description",
            "enabled",
            "when",
            "unless",
            "action",
            "method",
            "retain",
            "brand",
        )
        doc = self.mapping(value, path, keys)
        if not doc:
            raise self.fail(path, "empty rule")
        for required in ("name", "action"):
            if required not in doc:
                raise self.fail(path, f"missing {required!r}")
        name = doc["name"]
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise self.fail((*path, "name"), "expected a name (1-200 characters)")
        action = doc["action"]
        if action not in ACTIONS:
            raise self.fail(
                (*path, "action"),
                f"unknown action {action!r} (expected one of {', '.join(ACTIONS)})",
            )
        method = doc.get("method", "auto")
        if "method" in doc and action != "encrypt":
            raise self.fail((*path, "method"), "method only applies to action encrypt")
        if method not in METHODS:
            raise self.fail(
                (*path, "method"),
                f"unknown method {method!r} (expected one of {', '.join(METHODS)})",
            )
        enabled = doc.get("enabled", True)
        if not isinstance(enabled, bool):
            raise self.fail((*path, "enabled"), f"expected true or false, got {enabled!r}")
        description = doc.get("description", "")
        if not isinstance(description, str):
            raise self.fail((*path, "description"), "expected text")
        when = self.conditions(doc.get("when"), (*path, "when"))
        unless = self.conditions(doc.get("unless"), (*path, "unless"))
        if "unless" in doc and not unless:
            raise self.fail((*path, "unless"), "empty 'unless' would exclude every message")
        retain_days = None
        if "retain" in doc:
            try:
                retain_days = parse_retention_days(doc["retain"])
            except ValueError as exc:
                raise self.fail((*path, "retain"), str(exc)) from None
        brand = doc.get("brand", "")
        if not isinstance(brand, str) or (brand and not _BRAND.match(brand)):
            raise self.fail(
                (*path, "brand"),
                "a brand is named by 1 to 50 lower-case letters, digits, dots, dashes or _",
            )
        return Rule(
            name.strip(), action, method, when, unless, description, enabled, retain_days, brand
        )

    def conditions(self, value: Any, path: Path) -> dict[str, Any]:
        doc = self.mapping(value, path, tuple(_CONDITIONS))
        out = {key: _CONDITIONS[key](self, v, (*path, key)) for key, v in doc.items()}
        if "min_count" in out and not ({"detector", "text_matches"} & set(out)):
            raise self.fail((*path, "min_count"), "min_count needs a detector or text_matches")
        return out

    # one reader per condition key

    def c_strings(self, v: Any, p: Path) -> tuple[str, ...]:
        return self.strings(v, p, lower=True)

    def c_patterns(self, v: Any, p: Path) -> tuple[str, ...]:
        patterns = self.strings(v, p)
        for i, pat in enumerate(patterns):
            where = (*p, i) if isinstance(v, list) else p
            if len(pat) > MAX_PATTERN:
                raise self.fail(where, f"pattern longer than {MAX_PATTERN} characters")
            try:
                regex.compile(pat, regex.V0)
            except (regex.error, ValueError, OverflowError) as exc:
                raise self.fail(where, f"invalid regular expression: {exc}") from None
        return patterns

    def c_detector(self, v: Any, p: Path) -> tuple[str, ...]:
        names = self.strings(v, p)
        known = (*BUILTIN_DETECTORS, *(f"dictionary:{d}" for d in self.dictionaries))
        for i, name in enumerate(names):
            if name not in known:
                where = (*p, i) if isinstance(v, list) else p
                raise self.fail(
                    where, f"unknown detector {name!r} (expected one of {', '.join(known)})"
                )
        return names

    def c_types(self, v: Any, p: Path) -> tuple[str, ...]:
        names = self.strings(v, p, lower=True)
        for name in names:
            if name not in ATTACHMENT_TYPES:
                raise self.fail(
                    p, f"unknown type {name!r} (expected one of {', '.join(ATTACHMENT_TYPES)})"
                )
        return names

    def c_extension(self, v: Any, p: Path) -> tuple[str, ...]:
        return tuple(e.lstrip(".") for e in self.strings(v, p, lower=True))

    def c_groups(self, v: Any, p: Path) -> tuple[str, ...]:
        names = self.strings(v, p)
        for name in names:
            if name not in self.groups:
                known = ", ".join(self.groups) or "none defined"
                raise self.fail(p, f"unknown group {name!r} (groups: {known})")
        return names

    def c_domains(self, v: Any, p: Path) -> tuple[str, ...]:
        return tuple(d.lstrip("@").rstrip(".") for d in self.strings(v, p, lower=True))

    def c_header(self, v: Any, p: Path) -> tuple[tuple[str, tuple[str, ...]], ...]:
        if not isinstance(v, dict) or not v:
            raise self.fail(p, "expected a mapping of header name to value")
        out = []
        for name, values in v.items():
            if not re.match(r"^[!-9;-~]+$", name):
                raise self.fail((*p, name), f"invalid header name {name!r}")
            out.append((name.lower(), self.strings(values, (*p, name), lower=True)))
        return tuple(out)

    def c_size(self, v: Any, p: Path) -> int:
        try:
            return parse_size(v)
        except ValueError:
            raise self.fail(p, f"expected a size like 10MB or 500KB, got {v!r}") from None


_CONDITIONS: dict[str, Callable[[_Validator, Any, Path], Any]] = {
    "subject_contains": _Validator.c_strings,
    "text_matches": _Validator.c_patterns,
    "detector": _Validator.c_detector,
    "min_count": _Validator.count,
    "attachment_name": _Validator.c_strings,
    "attachment_extension": _Validator.c_extension,
    "attachment_type": _Validator.c_types,
    "sender": _Validator.c_strings,
    "sender_group": _Validator.c_groups,
    "recipient": _Validator.c_strings,
    "recipient_group": _Validator.c_groups,
    "recipient_domain": _Validator.c_domains,
    "header": _Validator.c_header,
    "size_over": _Validator.c_size,
    "size_under": _Validator.c_size,
}
CONDITION_KEYS = tuple(_CONDITIONS)


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    return repr(value)
