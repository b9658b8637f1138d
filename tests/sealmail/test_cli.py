"""The command line as a user runs it: exit codes, one-line errors, --json, idempotent init."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

SEALMAIL = [sys.executable, "-m", "sealmail"]


def sm(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SEALMAIL_")}
    return subprocess.run(
        [*SEALMAIL, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def workdir(tmp_path: Path, db_url: str) -> tuple[Path, dict[str, str]]:
    """An initialised directory whose database is SQLite or PostgreSQL."""
    env = {} if db_url.startswith("sqlite") else {"SEALMAIL_DATABASE_URL": db_url}
    proc = sm("init", "--dir", str(tmp_path / "w"), cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    return tmp_path / "w", env


def test_init_creates_everything_and_is_idempotent(tmp_path: Path) -> None:
    proc = sm("init", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["demo_tenant"]["smtp_password"]
    key = tmp_path / "var" / "keys" / "root.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert len(key.read_bytes()) == 32
    assert stat.S_IMODE((tmp_path / "var" / "tls" / "smtp.key").stat().st_mode) == 0o600
    assert (tmp_path / "var" / "tls" / "smtp.crt").read_bytes().startswith(b"-----BEGIN CERT")
    assert (tmp_path / "var" / "sealmail.db").exists()
    before = key.read_bytes(), (tmp_path / "sealmail.toml").read_text()
    again = sm("init", "--json", cwd=tmp_path)
    assert again.returncode == 0
    assert json.loads(again.stdout) == {
        "config": str(tmp_path / "sealmail.toml"),
        "created": [],
        "demo_tenant": None,
    }
    assert (key.read_bytes(), (tmp_path / "sealmail.toml").read_text()) == before
    tenants = json.loads(sm("tenant", "list", "--json", cwd=tmp_path).stdout)
    assert [t["name"] for t in tenants] == ["demo"]


def test_tenant_lifecycle(workdir: tuple[Path, dict[str, str]]) -> None:
    wd, env = workdir
    cfg = str(wd / "sealmail.toml")
    p = sm("--config", cfg, "partner", "create", "BlueMSP", "--json", cwd=wd, env=env)
    assert p.returncode == 0, p.stderr
    created = sm(
        "tenant", "create", "Acme", "--domain", "acme.example", "--domain", "ACME.test",
        "--partner", "BlueMSP", "--plan", "trial", "--json", "--config", cfg, cwd=wd, env=env,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    data = json.loads(created.stdout)
    assert data["domains"] == ["acme.example", "acme.test"]
    assert data["smtp_password"] and data["connector_token"] and data["api_key"].startswith("smk_")
    shown = json.loads(
        sm("--config", cfg, "tenant", "show", "Acme", "--json", cwd=wd, env=env).stdout
    )
    assert shown["partner"] == "BlueMSP" and shown["plan"] == "trial"
    assert shown["standing"] == "active"
    # secrets are never printed again
    assert data["smtp_password"] not in json.dumps(shown)
    for verb, standing in (
        ("suspend", "suspended"),
        ("resume", "active"),
        ("terminate", "terminated"),
    ):
        r = sm("--config", cfg, "tenant", verb, data["id"], "--json", cwd=wd, env=env)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["standing"] == standing
    listed = json.loads(sm("--config", cfg, "tenant", "list", "--json", cwd=wd, env=env).stdout)
    assert {t["name"]: t["standing"] for t in listed} == {"Acme": "terminated", "demo": "active"}
    partner = json.loads(
        sm("--config", cfg, "partner", "show", "BlueMSP", "--json", cwd=wd, env=env).stdout
    )
    assert [t["name"] for t in partner["tenants"]] == ["Acme"]
    queue = sm("--config", cfg, "queue", "list", "--json", cwd=wd, env=env)
    assert queue.returncode == 0 and json.loads(queue.stdout) == []


def test_failures_are_one_line_and_exit_1(workdir: tuple[Path, dict[str, str]]) -> None:
    wd, env = workdir
    cfg = str(wd / "sealmail.toml")
    dup = sm("--config", cfg, "tenant", "create", "X", "--domain", "demo.example", cwd=wd, env=env)
    assert dup.returncode == 1
    assert dup.stderr.strip().count("\n") == 0 and "demo.example" in dup.stderr
    missing = sm("--config", cfg, "tenant", "show", "nobody", cwd=wd, env=env)
    assert missing.returncode == 1 and missing.stderr.startswith("sealmail: ")
    bad_domain = sm(
        "--config", cfg, "tenant", "create", "Y", "--domain", "not a domain", cwd=wd, env=env
    )
    assert bad_domain.returncode == 1 and "invalid domain" in bad_domain.stderr


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert sm("tenant", "frobnicate", cwd=tmp_path).returncode == 2
    assert sm("tenant", "create", "NoDomain", cwd=tmp_path).returncode == 2
    assert sm("serve", "--role", "everything", cwd=tmp_path).returncode == 2


def test_config_errors_stop_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "sealmail.toml").write_text('smtp_listne = "127.0.0.1:25"\n')
    r = sm("tenant", "list", cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.strip() == "sealmail: unknown config key 'smtp_listne'"
    (tmp_path / "sealmail.toml").write_text('queue_lifetime = "forever"\n')
    r = sm("tenant", "list", cwd=tmp_path)
    assert r.returncode == 1 and "queue_lifetime" in r.stderr and r.stderr.count("\n") == 1
    (tmp_path / "sealmail.toml").unlink()
    r = sm("tenant", "list", cwd=tmp_path, env={"SEALMAIL_RELAY_TLS": "sometimes"})
    assert r.returncode == 1 and "relay_tls" in r.stderr


def test_serve_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    assert sm("init", cwd=tmp_path).returncode == 0
    env = {"SEALMAIL_DATABASE_URL": f"sqlite:///{tmp_path}/empty.db"}
    r = sm("serve", cwd=tmp_path, env=env)
    assert r.returncode == 1 and "sealmail migrate" in r.stderr
    m = sm("migrate", cwd=tmp_path, env=env)
    assert m.returncode == 0 and "migrated" in m.stdout
    assert "already" in sm("migrate", cwd=tmp_path, env=env).stdout


def test_tenant_update_validates_and_changes(workdir: tuple[Path, dict[str, str]]) -> None:
    wd, env = workdir
    cfg = str(wd / "sealmail.toml")
    r = sm(
        "--config", cfg, "tenant", "update", "demo", "--hide-subject", "--brand-color", "#AA3300",
        "--notification-from", "Notices@demo.example", "--network", "10.1.0.0/16", "--json",
        cwd=wd, env=env,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["changed"] == {
        "brand_color": "#aa3300",
        "hide_subject": True,
        "notification_from": "notices@demo.example",
        "networks_added": ["10.1.0.0/16"],
    }
    shown = json.loads(
        sm("--config", cfg, "tenant", "show", "demo", "--json", cwd=wd, env=env).stdout
    )
    assert shown["hide_subject"] is True and shown["brand_color"] == "#aa3300"
    assert shown["networks"] == [{"cidr": "10.1.0.0/16", "private": False}]
    again = sm(
        "--config", cfg, "tenant", "update", "demo", "--hide-subject", "--json", cwd=wd, env=env
    )
    assert json.loads(again.stdout)["changed"] == {}
    for bad in (
        ["--notification-from", "x@evil.example"],
        ["--logo-url", "javascript:alert(1)"],
        ["--brand-color", "red;background:url(x)"],
        ["--network", "not-a-network"],
    ):
        r = sm("--config", cfg, "tenant", "update", "demo", *bad, cwd=wd, env=env)
        assert r.returncode == 1 and r.stderr.startswith("sealmail: "), (bad, r.stderr)
