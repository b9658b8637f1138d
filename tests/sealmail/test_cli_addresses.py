"""Email arguments on the command line are checked by the one validator (core.addresses):
what it refuses is wrong usage (exit 2, naming the argument) in every command, before any
lookup."""

from __future__ import annotations

from pathlib import Path

from tests.sealmail.test_cli import sm, workdir  # noqa: F401 - the fixture


def test_email_arguments_use_the_one_validator(workdir: tuple[Path, dict[str, str]]) -> None:  # noqa: F811
    cwd, env = workdir
    for args in (
        ("user", "add", "Acme", "ann@localhost"),  # no dot in the domain
        ("support", "agent", "add", "a@b@acme.example"),  # two @
        ("support", "verify", "ann@acme.example."),  # the domain ends with a dot
        ("support", "agent", "key", "ann@acme\x07.example"),  # a control character
    ):
        r = sm(*args, cwd=cwd, env=env)
        assert r.returncode == 2 and "not an email address" in r.stderr, (args, r.stderr)
        assert "EMAIL" in r.stderr, r.stderr
