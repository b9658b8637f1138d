"""``sealmail keys import|list|remove`` as a user runs it: exit codes, one-line errors, --json."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import keygen
from tests.helpers.keygen import Certs, PgpKeys
from tests.sealmail.test_cli import sm, workdir  # noqa: F401 - the fixture

pgp_keys, certs = keygen.pgp_keys, keygen.certs  # session fixtures


def test_keys_import_list_remove(
    workdir: tuple[Path, dict[str, str]],  # noqa: F811
    pgp_keys: PgpKeys,
    certs: Certs,
    tmp_path: Path,
) -> None:
    wd, env = workdir
    cfg = ["--config", str(wd / "sealmail.toml")]
    tenants = json.loads(sm("tenant", "list", "--json", *cfg, cwd=wd, env=env).stdout)
    tenant = tenants[0]["name"]
    (tmp_path / "bob.asc").write_bytes(pgp_keys.public["bob"])
    (tmp_path / "carol.der").write_bytes(certs.der["carol"])
    (tmp_path / "revoked.asc").write_bytes(pgp_keys.public["revoked"])

    p = sm("keys", "import", tenant, str(tmp_path / "bob.asc"), *cfg, cwd=wd, env=env)
    assert p.returncode == 0, p.stderr
    assert f"imported pgp key {pgp_keys.fingerprint['bob']} for bob@recipient.test" in p.stdout
    p = sm("keys", "import", tenant, str(tmp_path / "carol.der"), "--json", *cfg, cwd=wd, env=env)
    assert p.returncode == 0, p.stderr
    carol = json.loads(p.stdout)[0]
    assert carol["kind"] == "smime" and carol["email"] == "carol@recipient.test"

    p = sm("keys", "import", tenant, str(tmp_path / "revoked.asc"), *cfg, cwd=wd, env=env)
    assert p.returncode == 1
    assert p.stderr == f"sealmail: key {pgp_keys.fingerprint['revoked']} is revoked\n"
    p = sm("keys", "import", tenant, str(tmp_path / "missing.asc"), *cfg, cwd=wd, env=env)
    assert p.returncode == 1 and p.stderr.startswith("sealmail: cannot read")
    p = sm("keys", "import", "no-such-tenant", str(tmp_path / "bob.asc"), *cfg, cwd=wd, env=env)
    assert p.returncode == 1 and len(p.stderr.splitlines()) == 1

    p = sm("keys", "list", tenant, "--json", *cfg, cwd=wd, env=env)
    assert p.returncode == 0, p.stderr
    assert sorted(k["email"] for k in json.loads(p.stdout)) == [
        "bob@recipient.test",
        "carol@recipient.test",
    ]
    p = sm("keys", "list", tenant, *cfg, cwd=wd, env={**env, "COLUMNS": "250"})
    assert "bob@recipient.test" in p.stdout

    p = sm("keys", "remove", tenant, pgp_keys.fingerprint["bob"], *cfg, cwd=wd, env=env)
    assert p.returncode == 0, p.stderr
    assert "removed pgp key" in p.stdout
    p = sm("keys", "remove", tenant, pgp_keys.fingerprint["bob"], *cfg, cwd=wd, env=env)
    assert p.returncode == 1 and "no key" in p.stderr and len(p.stderr.splitlines()) == 1
    p = sm("keys", "list", tenant, "--json", *cfg, cwd=wd, env=env)
    assert [k["email"] for k in json.loads(p.stdout)] == ["carol@recipient.test"]
    assert sm("keys", "import", tenant, *cfg, cwd=wd, env=env).returncode == 2  # usage
