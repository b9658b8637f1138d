"""``sealmail tenant update --relay``: a tenant's own next hop, validated like ``relay``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.sealmail.test_cli import sm, workdir  # noqa: F401 - the fixture

pytestmark = pytest.mark.timeout(300)


def test_tenant_update_relay(workdir: tuple[Path, dict[str, str]]) -> None:  # noqa: F811
    wd, env = workdir
    cfg = str(wd / "sealmail.toml")

    def update(*args: str):  # noqa: ANN202
        return sm("--config", cfg, "tenant", "update", "demo", *args, "--json", cwd=wd, env=env)

    r = update("--relay", "contoso-com.mail.protection.outlook.com:25")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["changed"] == {
        "relay": "contoso-com.mail.protection.outlook.com:25"
    }
    shown = sm("--config", cfg, "tenant", "show", "demo", "--json", cwd=wd, env=env)
    assert json.loads(shown.stdout)["relay"] == "contoso-com.mail.protection.outlook.com:25"
    text = sm("--config", cfg, "tenant", "show", "demo", cwd=wd, env=env)
    assert "contoso-com.mail.protection.outlook.com:25" in text.stdout
    assert json.loads(update("--relay", "MX").stdout)["changed"] == {"relay": "mx"}
    for bad in ("outlook.com", "host:99999", "host:port", "a b:25"):
        r = sm("--config", cfg, "tenant", "update", "demo", "--relay", bad, cwd=wd, env=env)
        assert r.returncode == 1 and r.stderr.startswith("sealmail: "), (bad, r.stderr)
        assert "next hop" in r.stderr
    assert json.loads(update("--relay", "").stdout)["changed"] == {"relay": ""}
    text = sm("--config", cfg, "tenant", "show", "demo", cwd=wd, env=env)
    assert "(global relay)" in text.stdout
