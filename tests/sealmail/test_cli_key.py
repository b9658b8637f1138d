"""``sealmail key rotate`` as an operator runs it (both databases): tenant and root rotation,
JSON summaries, a run killed in the middle and run again, and one-line errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from sqlalchemy import func, select

from core.config.loading import load_settings
from core.models import AuditEvent, SealedObject, Tenant, TenantKey
from core.rootkey.file_root import file_key_id
from core.services import Services
from tests.core.test_keys_kms import new_kms_key
from tests.e2e.conftest import SEALMAIL
from tests.helpers.moto_server import MotoServer
from tests.sealmail.test_cli import sm, workdir  # noqa: F401 - the fixture


def _services(wd: Path, env: dict[str, str]) -> Services:
    return Services.open(load_settings(wd / "sealmail.toml", env=env))


async def _seal(wd: Path, env: dict[str, str], n: int) -> tuple[str, list[str]]:
    svc = _services(wd, env)
    try:
        async with svc.db.session() as s:
            tenant = (await s.execute(select(Tenant).where(Tenant.name == "demo"))).scalar_one()
            ids = [(await svc.vault.seal(s, tenant.id, b"m%d" % i, "raw")).id for i in range(n)]
            await s.commit()
        return tenant.id, ids
    finally:
        await svc.close()


async def _read(wd: Path, env: dict[str, str], tenant_id: str, ids: list[str]) -> None:
    svc = _services(wd, env)
    try:
        async with svc.db.session() as s:
            for i, oid in enumerate(ids):
                assert await svc.vault.read(s, tenant_id, oid) == b"m%d" % i
    finally:
        await svc.close()


async def test_rotate_tenant_and_root(workdir: tuple[Path, dict[str, str]]) -> None:  # noqa: F811
    wd, env = workdir
    tenant_id, ids = await _seal(wd, env, 3)

    proc = sm("key", "rotate", "--tenant", "demo", "--json", cwd=wd, env=env)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["scope"] == "tenant" and report["tenant_id"] == tenant_id
    assert (report["version"], report["rewrapped"], report["retired"]) == (2, 3, [1])

    proc = sm("key", "rotate", "--tenant", tenant_id, cwd=wd, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "rotated to KEK version 3; 3 data key(s) re-wrapped" in proc.stdout
    assert "retired version(s): 2" in proc.stdout

    root_path = wd / "var" / "keys" / "root.key"
    old = root_path.read_bytes()
    proc = sm("key", "rotate", "--json", cwd=wd, env=env)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["scope"] == "root" and report["rewrapped"] == 3  # three KEK versions
    assert root_path.read_bytes() != old
    assert report["root_key_id"] == file_key_id(root_path.read_bytes())
    assert [Path(p).read_bytes() for p in report["kept_files"]] == [old]
    await _read(wd, env, tenant_id, ids)

    svc = _services(wd, env)
    try:
        async with svc.db.session() as s:
            actions = (await s.execute(select(AuditEvent.action))).scalars().all()
            assert actions.count("key.rotate") == 2 and actions.count("key.rotate_root") == 1
    finally:
        await svc.close()


def test_rotate_usage_and_errors(workdir: tuple[Path, dict[str, str]]) -> None:  # noqa: F811
    from click.testing import CliRunner

    from sealmail.cli.main import cli

    wd, env = workdir
    config = str(wd / "sealmail.toml")
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(cli, ["--config", config, *args], env=env)
        return result.exit_code, result.stderr

    code, err = run("key", "rotate", "--tenant", "nobody")
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("sealmail: ") and "nobody" in err
    code, err = run("key", "rotate", "--tenant", "demo", "--to", "aws-kms://alias/x")
    assert code == 2 and "--to" in err
    code, err = run("key", "rotate", "--to", "s3://bucket")
    assert code == 2 and "aws-kms://" in err
    help_text = runner.invoke(cli, ["key", "rotate", "--help"]).stdout
    assert "--tenant" in help_text and "root.key.old-" in help_text


async def test_killed_rotation_runs_again_to_the_end(
    workdir: tuple[Path, dict[str, str]],  # noqa: F811
) -> None:
    """SIGKILL in the middle of re-wrapping; every key still opens; the next run finishes."""
    wd, env = workdir
    svc = _services(wd, env)
    n = 6000
    try:
        async with svc.db.session() as s:
            tenant_id = (
                await s.execute(select(Tenant.id).where(Tenant.name == "demo"))
            ).scalar_one()
            # rows only: rotation never reads the objects
            for i in range(n):
                _, wrapped, version = await svc.keyring.new_data_key(s, tenant_id, f"o_k{i:05d}")
                s.add(
                    SealedObject(
                        id=f"o_k{i:05d}",
                        tenant_id=tenant_id,
                        kind="raw",
                        storage_name=f"o_k{i:05d}",
                        wrapped_key=wrapped,
                        kek_version=version,
                    )
                )
            await s.commit()
    finally:
        await svc.close()

    async def count_v2() -> int:
        svc = _services(wd, env)
        try:
            async with svc.db.session() as s:
                return int(
                    (
                        await s.execute(
                            select(func.count())
                            .select_from(SealedObject)
                            .where(SealedObject.kek_version == 2)
                        )
                    ).scalar_one()
                )
        finally:
            await svc.close()

    clean = {k: v for k, v in os.environ.items() if not k.startswith("SEALMAIL_")}
    proc = subprocess.Popen(
        [*SEALMAIL, "key", "rotate", "--tenant", "demo", "--json"],
        cwd=wd,
        env={**clean, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while await count_v2() == 0 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()  # whatever happened above: never left running
        proc.wait(30)
    moved = await count_v2()
    assert 0 < moved < n, f"the kill came too late ({moved} of {n} moved)"

    # in between: every data key opens with the version its row names
    svc = _services(wd, env)
    try:
        async with svc.db.session() as s:
            rows = (await s.execute(select(SealedObject))).scalars().all()
            for r in rows:
                assert r.wrapped_key is not None
                await svc.keyring.data_key(s, tenant_id, r.id, r.wrapped_key, r.kek_version)
    finally:
        await svc.close()

    proc2 = sm("key", "rotate", "--tenant", "demo", "--json", cwd=wd, env=env)
    assert proc2.returncode == 0, proc2.stderr
    report = json.loads(proc2.stdout)
    assert report["resumed"] and report["version"] == 2
    assert report["rewrapped"] == n - moved and report["retired"] == [1]
    assert await count_v2() == n
    print(f"re-wrapped {report['rewrapped']} data keys in {report['seconds']}s")


def _kms_config(wd: Path, endpoint: str, key: str) -> None:
    wd.mkdir(parents=True, exist_ok=True)
    (wd / "sealmail.toml").write_text(
        f'data_dir = "./var"\nroot_key = "aws-kms://{key}"\nkms_endpoint_url = "{endpoint}"\n'
    )


async def test_init_and_rotate_with_a_kms_root(
    tmp_path: Path, db_url: str, moto_server: MotoServer
) -> None:
    env = {} if db_url.startswith("sqlite") else {"SEALMAIL_DATABASE_URL": db_url}
    arn = new_kms_key(moto_server.endpoint)
    wd = tmp_path / "w"
    _kms_config(wd, moto_server.endpoint, arn)
    proc = sm("init", "--json", cwd=wd, env=env)
    assert proc.returncode == 0, proc.stderr
    created = json.loads(proc.stdout)["created"]
    assert not (wd / "var" / "keys" / "root.key").exists()
    assert any("derivation secret" in c for c in created)
    # the derivation secret is in the database, not in a file another host would need
    assert not (wd / "var" / "keys" / "kms-root.derive").exists()
    tenant_id, ids = await _seal(wd, env, 2)
    svc = _services(wd, env)
    try:
        async with svc.db.session() as s:
            assert (await s.execute(select(TenantKey.root_key_id))).scalar_one() == "aws-kms:" + arn
    finally:
        await svc.close()

    proc = sm("key", "rotate", "--json", cwd=wd, env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["rewrapped"] == 1
    proc = sm("key", "rotate", "--tenant", "demo", "--json", cwd=wd, env=env)
    assert proc.returncode == 0, proc.stderr
    await _read(wd, env, tenant_id, ids)


def test_unknown_kms_key_stops_rotate_and_serve(tmp_path: Path, moto_server: MotoServer) -> None:
    wd = tmp_path / "w"
    _kms_config(wd, moto_server.endpoint, "alias/sealmail-missing")
    proc = sm("init", cwd=wd)
    assert proc.returncode == 1, proc.stdout
    assert proc.stderr.count("\n") == 1 and "NotFoundException" in proc.stderr
    # a directory made with a working key, then pointed at a missing one
    good = new_kms_key(moto_server.endpoint)
    _kms_config(wd, moto_server.endpoint, good)
    assert sm("init", cwd=wd).returncode == 0
    _kms_config(wd, moto_server.endpoint, "alias/sealmail-missing")
    for args in (("key", "rotate", "--tenant", "demo"), ("serve",)):
        proc = sm(*args, cwd=wd)
        assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
        assert proc.stderr.count("\n") == 1, proc.stderr
        assert proc.stderr.startswith("sealmail: ") and "alias/sealmail-missing" in proc.stderr


def test_kms_down_is_a_one_line_error(tmp_path: Path, moto_server: MotoServer) -> None:
    wd = tmp_path / "w"
    _kms_config(wd, moto_server.endpoint, new_kms_key(moto_server.endpoint))
    assert sm("init", cwd=wd).returncode == 0
    down = MotoServer()  # a port nothing listens on
    _kms_config(wd, down.endpoint, "alias/whatever")
    proc = sm("key", "rotate", cwd=wd)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert "KMS unreachable" in proc.stderr
