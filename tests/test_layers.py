"""The import rule of STYLE.md, enforced on the source with ``ast``.

layer 3  sealmail/                 anything
layer 2  gateway/  portal/         layers 0-1, never each other
layer 1  archive/ branding/ billing_hooks/ support/ conversations/   core only
layer 0  core/                     nothing of the project

Inside every package, modules import each other without a cycle either: a cycle between two
modules means neither can be read (or changed) without the other.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    "core",
    "archive",
    "branding",
    "billing_hooks",
    "support",
    "conversations",
    "gateway",
    "portal",
    "sealmail",
)
LAYER1 = {"core"}
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "archive": LAYER1,
    "branding": LAYER1,
    "billing_hooks": LAYER1,
    "support": LAYER1,
    "conversations": LAYER1,
    "gateway": {"core", "archive", "branding", "billing_hooks", "support", "conversations"},
    "portal": {"core", "archive", "branding", "billing_hooks", "support", "conversations"},
    "sealmail": set(PACKAGES),
}


def imported_packages(source: str, filename: str = "<src>") -> Iterator[tuple[int, str]]:
    """(line, top-level project package) for every absolute import in ``source``, wherever it
    stands (module level, inside functions, under ``TYPE_CHECKING``)."""
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue  # relative imports stay inside their own package
        for name in names:
            top = name.split(".", 1)[0]
            if top in PACKAGES:
                yield node.lineno, top


def package_imports(root: Path) -> dict[str, dict[str, list[str]]]:
    """package -> imported package -> ["path:line", ...] (imports of itself left out)."""
    graph: dict[str, dict[str, list[str]]] = {p: {} for p in PACKAGES}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root)
            for line, target in imported_packages(path.read_text(encoding="utf-8"), str(rel)):
                if target != package:
                    graph[package].setdefault(target, []).append(f"{rel}:{line}")
    return graph


def violations(graph: dict[str, dict[str, list[str]]]) -> list[str]:
    return [
        f"{where}: {package} may not import {target}"
        for package, targets in graph.items()
        for target, places in targets.items()
        if target not in ALLOWED[package]
        for where in places
    ]


def cycles(graph: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """Every import cycle between packages, found by depth-first search."""
    found: list[list[str]] = []
    seen: set[frozenset[str]] = set()

    def visit(node: str, path: list[str]) -> None:
        for nxt in graph.get(node, {}):
            if nxt in path:
                cycle = path[path.index(nxt) :] + [nxt]
                key = frozenset(cycle)
                if key not in seen:
                    seen.add(key)
                    found.append(cycle)
            else:
                visit(nxt, path + [nxt])

    for start in graph:
        visit(start, [start])
    return found


def test_every_package_is_scanned() -> None:
    for package in PACKAGES:
        assert (ROOT / package).is_dir(), f"package directory {package}/ missing"
    graph = package_imports(ROOT)
    assert "core" in graph["archive"], "the scan found no archive -> core import"


def test_imports_follow_the_layers() -> None:
    problems = violations(package_imports(ROOT))
    assert not problems, "import rule broken (see STYLE.md):\n" + "\n".join(problems)


def test_no_import_cycles_between_packages() -> None:
    found = cycles(package_imports(ROOT))
    assert not found, "import cycles: " + "; ".join(" -> ".join(c) for c in found)


# --- no cycles between modules, inside packages or across them --------------------------------


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(root: Path, dotted: str) -> str | None:
    """The project module a dotted name refers to (a module or a package), else None."""
    base = root.joinpath(*dotted.split("."))
    if base.with_suffix(".py").is_file() or (base / "__init__.py").is_file():
        return dotted
    return None


def module_imports(root: Path) -> dict[str, set[str]]:
    """module -> the project modules it imports, wherever the import stands (module level,
    inside a function, under ``TYPE_CHECKING``); relative imports resolved. ``from a.b import
    c`` names the module ``a.b.c`` when it exists, else ``a.b``."""
    graph: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            name = _module_name(root, path)
            is_pkg = path.name == "__init__.py"
            targets: set[str] = set()
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
                candidates: list[str] = []
                if isinstance(node, ast.Import):
                    candidates = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom):
                    if node.level:
                        anchor = name.split(".") if is_pkg else name.split(".")[:-1]
                        anchor = anchor[: len(anchor) - (node.level - 1)]
                        base = ".".join([*anchor, *(node.module or "").split(".")]).strip(".")
                    else:
                        base = node.module or ""
                    candidates = [f"{base}.{alias.name}" for alias in node.names] + [base]
                    # the base itself only when no name below it is a module
                    found = [c for c in candidates[:-1] if _resolve(root, c)]
                    candidates = found or [base]
                for dotted in candidates:
                    if dotted.split(".", 1)[0] not in PACKAGES:
                        continue
                    parts = dotted.split(".")
                    while parts and not _resolve(root, ".".join(parts)):
                        parts.pop()
                    if parts and ".".join(parts) != name:
                        targets.add(".".join(parts))
            graph[name] = targets
    return graph


def module_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def strong(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return found


def test_no_import_cycles_between_modules() -> None:
    graph = module_imports(ROOT)
    assert "core.models" in graph["core.outbox"], (
        "the scan found no core.outbox -> core.models import"
    )
    found = module_cycles(graph)
    assert not found, "import cycles between modules:\n" + "\n".join(" <-> ".join(c) for c in found)


MAX_LINES = 500  # no module above this
ONE_CONCEPT_LINES = 300  # above this a module names its one concept in its docstring


def test_modules_are_small_and_say_what_they_hold() -> None:
    too_big: list[str] = []
    unexplained: list[str] = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            source = path.read_text(encoding="utf-8")
            lines = source.count("\n")
            rel = str(path.relative_to(ROOT))
            if lines > MAX_LINES:
                too_big.append(f"{rel} ({lines} lines)")
            elif lines > ONE_CONCEPT_LINES and not ast.get_docstring(ast.parse(source)):
                unexplained.append(f"{rel} ({lines} lines)")
    assert not too_big, f"modules over {MAX_LINES} lines: " + ", ".join(too_big)
    assert not unexplained, "modules over 300 lines without a docstring: " + ", ".join(unexplained)


def test_module_cycle_finder_sees_cycles(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "core/a.py": "from core import b\n",
            "core/b.py": "def f():\n    from core.a import x\n",
            "portal/x.py": "from . import y\n",
            "portal/y.py": "from .x import thing\n",
            "gateway/ok1.py": "import gateway.ok2\n",
            "gateway/ok2.py": "import core.a\n",
        },
    )
    assert module_cycles(module_imports(root)) == [["core.a", "core.b"], ["portal.x", "portal.y"]]


# --- the checker itself must be able to fail -----------------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    ("path", "source"),
    [
        ("core/bad.py", "import archive.store\n"),
        ("core/bad.py", "def f():\n    from sealmail import cli\n"),
        ("archive/bad.py", "from gateway.intake import x\n"),
        ("branding/bad.py", "from archive import vault\n"),
        ("gateway/bad.py", "import portal.app as p\n"),
        (
            "portal/bad.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import gateway\n",
        ),
        ("billing_hooks/bad.py", "from portal import app\n"),
        ("support/bad.py", "from branding.support_mail import support_mailer\n"),
        ("support/bad.py", "def f():\n    from billing_hooks import notify\n"),
    ],
)
def test_checker_catches_a_forbidden_import(tmp_path: Path, path: str, source: str) -> None:
    problems = violations(package_imports(_tree(tmp_path, {path: source})))
    assert len(problems) == 1 and problems[0].startswith(path + ":")


@pytest.mark.parametrize(
    ("path", "source"),
    [
        ("core/ok.py", "from . import errors\nimport os\nfrom core.ids import new_id\n"),
        ("archive/ok.py", "from core import sealed\n"),
        ("gateway/ok.py", "from archive.vault import Vault\nfrom branding import x\n"),
        ("sealmail/ok.py", "import gateway\nimport portal\n"),
        ("support/ok.py", "from core.models import Base\n"),
        ("portal/ok.py", "from support.pins import check_pin\n"),
        ("core/ok.py", "import coreutils\nimport portals\n"),  # prefixes are other packages
    ],
)
def test_checker_allows_what_the_rule_allows(tmp_path: Path, path: str, source: str) -> None:
    assert violations(package_imports(_tree(tmp_path, {path: source}))) == []


def test_cycle_finder_sees_a_cycle() -> None:
    graph = {p: {} for p in PACKAGES}
    graph["archive"] = {"branding": ["x"]}
    graph["branding"] = {"archive": ["y"]}
    assert cycles(graph) == [["archive", "branding", "archive"]]
    assert cycles({p: {} for p in PACKAGES}) == []
