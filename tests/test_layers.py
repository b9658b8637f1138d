"""The import rule of STYLE.md, enforced on the source with ``ast``.

layer 3  sealmail/                 anything
layer 2  gateway/  portal/         layers 0-1, never each other
layer 1  archive/ branding/ billing_hooks/   core only
layer 0  core/                     nothing of the project
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "archive", "branding", "billing_hooks", "gateway", "portal", "sealmail")
LAYER1 = {"core"}
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "archive": LAYER1,
    "branding": LAYER1,
    "billing_hooks": LAYER1,
    "gateway": {"core", "archive", "branding", "billing_hooks"},
    "portal": {"core", "archive", "branding", "billing_hooks"},
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
