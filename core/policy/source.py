"""Reading a policy document (YAML or JSON) into plain values plus a map from each field's
path to its line, so a validation error can say ``line 12: rules[2].when.detector: ...``."""

from __future__ import annotations

import json
from typing import Any

import yaml

from core.errors import SealmailError

Path = tuple[str | int, ...]
MAX_NODES = 100_000  # aliases can make a small YAML text huge ("billion laughs")
MAX_DEPTH = 40


class PolicyError(SealmailError):
    """An invalid policy document; ``str()`` is one line a person can act on."""

    def __init__(self, message: str, line: int | None = None, field: str = "") -> None:
        self.message, self.line, self.field = message, line, field
        where = f"{field}: " if field else ""
        prefix = f"line {line}: " if line else ""
        super().__init__(f"{prefix}{where}{message}")


def field_name(path: Path) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class Source:
    """The parsed values and where each path starts."""

    def __init__(self, value: Any, lines: dict[Path, int]) -> None:
        self.value, self.lines = value, lines

    def line(self, path: Path) -> int | None:
        for n in range(len(path), -1, -1):
            if path[:n] in self.lines:
                return self.lines[path[:n]]
        return None

    def error(self, path: Path, message: str) -> PolicyError:
        return PolicyError(message, self.line(path), field_name(path))


def load(text: str, fmt: str) -> Source:
    if fmt == "yaml":
        return _load_yaml(text)
    if fmt == "json":
        return _load_json(text)
    raise PolicyError(f"unknown format {fmt!r} (expected yaml or json)")


def _load_json(text: str) -> Source:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in items:
            if k in out:
                raise PolicyError(f"duplicate key {k!r}")
            out[k] = v
        return out

    try:
        value = json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        raise PolicyError(exc.msg, exc.lineno) from None
    except RecursionError:
        raise PolicyError("document nested too deeply") from None
    # JSON is (nearly) YAML in flow style: borrow the YAML composer's line marks; where it
    # cannot read the text, errors still name the field, only without a line.
    try:
        lines = _load_yaml(text).lines
    except (PolicyError, RecursionError):
        lines = {}
    return Source(value, lines)


def _load_yaml(text: str) -> Source:
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else None
            raise PolicyError(exc.problem or str(exc).splitlines()[0], line) from None
        except yaml.YAMLError as exc:
            raise PolicyError(str(exc).splitlines()[0]) from None
        lines: dict[Path, int] = {}
        if node is None:
            return Source({}, lines)
        budget = [MAX_NODES]
        return Source(_build(loader, node, (), lines, budget), lines)
    finally:
        loader.dispose()


def _build(
    loader: yaml.SafeLoader, node: yaml.Node, path: Path, lines: dict[Path, int], budget: list[int]
) -> Any:
    budget[0] -= 1
    line = node.start_mark.line + 1
    if budget[0] < 0:
        raise PolicyError("document too large (too many values)", line)
    if len(path) > MAX_DEPTH:
        raise PolicyError("document nested too deeply", line, field_name(path))
    lines.setdefault(path, line)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(loader, key_node, path)
            if not isinstance(key, str | int | float | bool) or key is None:
                raise PolicyError("keys must be plain words", key_node.start_mark.line + 1)
            key = str(key)
            if key in out:
                raise PolicyError(
                    f"duplicate key {key!r}", key_node.start_mark.line + 1, field_name(path)
                )
            lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _build(loader, value_node, (*path, key), lines, budget)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            lines[(*path, i)] = item.start_mark.line + 1
            items.append(_build(loader, item, (*path, i), lines, budget))
        return items
    return _scalar(loader, node, path)


def _scalar(loader: yaml.SafeLoader, node: yaml.Node, path: Path) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise PolicyError("keys must be plain words", node.start_mark.line + 1, field_name(path))
    try:
        return loader.construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        raise PolicyError(str(exc).splitlines()[0], node.start_mark.line + 1) from None
