"""``sealmail user add|list|remove`` through the real command line, on both databases."""

from __future__ import annotations

import json
from pathlib import Path

from tests.sealmail.test_cli import sm, workdir  # noqa: F401 - the fixture


def test_user_add_list_remove(workdir: tuple[Path, dict[str, str]]) -> None:  # noqa: F811
    cwd, env = workdir
    proc = sm("tenant", "create", "Acme", "--domain", "acme.example", "--json", cwd=cwd, env=env)
    assert proc.returncode == 0, proc.stderr

    proc = sm("user", "add", "Acme", "Carol@Acme.example", "--role", "compliance", "--json",
              cwd=cwd, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    added = json.loads(proc.stdout)
    assert (added["email"], added["role"], added["tenant"]) == (
        "carol@acme.example", "compliance", "Acme",
    )  # fmt: skip
    assert sm("user", "add", "Acme", "dave@acme.example", "--role", "admin", cwd=cwd,
              env=env).returncode == 0  # fmt: skip

    again = sm("user", "add", "Acme", "carol@acme.example", cwd=cwd, env=env)
    assert again.returncode == 1 and "already a user" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1

    listed = json.loads(sm("user", "list", "Acme", "--json", cwd=cwd, env=env).stdout)
    assert [(u["email"], u["role"]) for u in listed] == [
        ("carol@acme.example", "compliance"),
        ("dave@acme.example", "admin"),
    ]
    table = sm("user", "list", "Acme", cwd=cwd, env=env)
    assert table.returncode == 0 and "carol@acme.example" in table.stdout

    proc = sm("user", "remove", "Acme", "carol@acme.example", cwd=cwd, env=env)
    assert proc.returncode == 0, proc.stderr
    listed = json.loads(sm("user", "list", "Acme", "--json", cwd=cwd, env=env).stdout)
    assert [u["email"] for u in listed] == ["dave@acme.example"]

    gone = sm("user", "remove", "Acme", "carol@acme.example", cwd=cwd, env=env)
    assert gone.returncode == 1 and "not a user" in gone.stderr


def test_user_wrong_usage(workdir: tuple[Path, dict[str, str]]) -> None:  # noqa: F811
    cwd, env = workdir
    assert sm("user", "add", "Acme", "x@y", "--role", "root", cwd=cwd, env=env).returncode == 2
    assert sm("user", "add", "Acme", "not-an-address", cwd=cwd, env=env).returncode == 2
    proc = sm("user", "list", "NoSuchTenant", cwd=cwd, env=env)
    assert proc.returncode == 1 and "no tenant" in proc.stderr
