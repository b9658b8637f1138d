"""``sealmail policy list|export|import`` as a user runs it, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

from tests.sealmail.test_cli import sm, workdir  # noqa: F401 - the fixture

POLICY = """\
encrypt_external: true
rules:
  - name: card numbers
    when: {detector: credit_card}
    action: encrypt
  - name: lawyers
    when: {recipient_domain: lawfirm.example}
    action: require_tls
"""


def test_import_list_export_round_trip(workdir: tuple[Path, dict[str, str]]) -> None:  # noqa: F811
    wd, env = workdir
    (wd / "policy.yaml").write_text(POLICY)
    first = sm("policy", "import", "demo", "policy.yaml", "--json", cwd=wd, env=env)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["version"] == 1
    again = sm("policy", "import", "demo", "policy.yaml", cwd=wd, env=env)
    assert again.returncode == 0 and "policy version 2 (2 rules)" in again.stdout

    listed = sm("policy", "list", "demo", "--json", cwd=wd, env=env)
    data = json.loads(listed.stdout)
    assert data["version"] == 2 and data["updated_by"] == "cli"
    assert [r["name"] for r in data["policy"]["rules"]] == ["card numbers", "lawyers"]
    human = sm("policy", "list", "demo", cwd=wd, env=env)
    assert "card numbers" in human.stdout and "require_tls" in human.stdout

    exported = sm("policy", "export", "demo", "--format", "json", cwd=wd, env=env)
    assert exported.returncode == 0
    assert json.loads(exported.stdout) == data["policy"]
    out = sm("policy", "export", "demo", "copy.json", cwd=wd, env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads((wd / "copy.json").read_text()) == data["policy"]
    back = sm("policy", "import", "demo", "copy.json", "--json", cwd=wd, env=env)
    assert json.loads(back.stdout)["version"] == 3


def test_import_errors_are_one_line_with_file_line_and_field(
    workdir: tuple[Path, dict[str, str]],  # noqa: F811
) -> None:
    wd, env = workdir
    bad = POLICY.replace("credit_card", "ccn")
    (wd / "policy.yaml").write_text(bad)
    proc = sm("policy", "import", "demo", "policy.yaml", cwd=wd, env=env)
    assert proc.returncode == 1
    assert proc.stderr.startswith(
        "sealmail: policy.yaml: line 4: rules[0].when.detector: unknown detector 'ccn'"
    )
    assert proc.stderr.count("\n") == 1
    listed = json.loads(sm("policy", "list", "demo", "--json", cwd=wd, env=env).stdout)
    assert listed["version"] == 0  # nothing changed
    missing = sm("policy", "import", "nosuch", "policy.yaml", cwd=wd, env=env)
    assert missing.returncode == 1
    usage = sm("policy", "import", "demo", cwd=wd, env=env)
    assert usage.returncode == 2
