"""The process that renders tenants' own templates: ``python -m branding.template_worker``.

It reads one JSON request per line on standard input (``source``, ``context``, ``html``) and
writes one JSON answer per line: ``{"ok": text}`` or ``{"error": message, "line": n}``. It
runs apart from sealmail so that a template that never ends can be stopped by killing it
(:mod:`branding.custom_templates` does, after its time limit), with no secrets in its
environment and a cap on its memory. Inside, the template runs in Jinja2's immutable sandbox
with no loader (no include, import or extends), only the documented variables, a bounded
``range``, no huge ``*``/``**`` results, and its output cut at ``MAX_OUTPUT``.
"""

from __future__ import annotations

import json
import operator
import sys
import traceback
from collections.abc import Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

MAX_OUTPUT = 256 * 1024  # characters of output
MAX_ITEMS = 100_000  # a string, list or range made by one expression
MEMORY = 768 * 1024 * 1024  # address space of this process


class TooBig(Exception):
    pass


class LimitedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox plus limits on what one expression may build."""

    intercepted_binops = frozenset({"*", "**", "+"})

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        if operator_ == "**":
            if isinstance(right, int | float) and abs(right) > 64:
                raise TooBig("a power larger than 64")
            return operator.pow(left, right)
        if operator_ == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(n, int):
                    if len(seq) * n > MAX_ITEMS:
                        raise TooBig(f"a text or list longer than {MAX_ITEMS} items")
            return operator.mul(left, right)
        if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
            if len(left) + len(right) > MAX_ITEMS:
                raise TooBig(f"a text or list longer than {MAX_ITEMS} items")
        return operator.add(left, right)


def _range(*args: int) -> range:
    r = range(*args)
    if len(r) > MAX_ITEMS:
        raise TooBig(f"a range of more than {MAX_ITEMS} numbers")
    return r


def environment(html: bool) -> LimitedEnvironment:
    env = LimitedEnvironment(
        autoescape=html,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.globals.clear()
    env.globals["range"] = _range
    return env


def _line_of(exc: BaseException) -> int | None:
    if isinstance(exc, TemplateSyntaxError):
        return exc.lineno
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == "<template>":
            line = frame.lineno
    return line


def render(envs: Mapping[bool, LimitedEnvironment], request: Mapping[str, Any]) -> dict[str, Any]:
    source, context, html = request["source"], request["context"], bool(request["html"])
    try:
        template = envs[html].from_string(source)
        out: list[str] = []
        size = 0
        for chunk in template.generate(**context):
            size += len(chunk)
            if size > MAX_OUTPUT:
                raise TooBig(f"the output is larger than {MAX_OUTPUT // 1024} KB")
            out.append(chunk)
        return {"ok": "".join(out)}
    except TooBig as exc:
        return {"error": f"stopped: it makes {exc}", "line": _line_of(exc)}
    except SecurityError as exc:
        return {"error": f"not allowed: {exc}", "line": _line_of(exc)}
    except TemplateSyntaxError as exc:
        return {"error": f"syntax: {exc.message}", "line": exc.lineno}
    except MemoryError as exc:
        return {"error": "stopped: it needs too much memory", "line": _line_of(exc)}
    except RecursionError as exc:
        return {"error": "stopped: it calls itself too deeply", "line": _line_of(exc)}
    except Exception as exc:  # noqa: BLE001 - any failure of a tenant's template is reported
        text = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        return {"error": text, "line": _line_of(exc)}


def main() -> None:
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))
    except (ImportError, ValueError, OSError):  # pragma: no cover - not on every platform
        pass
    sys.setrecursionlimit(400)
    envs = {True: environment(True), False: environment(False)}
    sys.stdout.write(json.dumps({"ready": True}) + "\n")
    sys.stdout.flush()
    for line in sys.stdin:
        try:
            request = json.loads(line)
        except ValueError:
            answer: dict[str, Any] = {"error": "bad request", "line": None}
        else:
            answer = render(envs, request)
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
