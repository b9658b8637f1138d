"""``sealmail archive sweep|verify|hold`` and ``tenant update --archive-retention
--portal-retention`` as an operator runs them (both databases): output, --json, exit codes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from sqlalchemy import select

from core.config.loading import load_settings
from core.models import Tenant
from core.services import Services
from tests.archive.test_retention import archived
from tests.sealmail.test_cli import sm, workdir  # noqa: F401 - the fixture


def _services(wd: Path, env: dict[str, str]) -> Services:
    return Services.open(load_settings(wd / "sealmail.toml", env=env))


async def _fill(wd: Path, env: dict[str, str]) -> tuple[str, str, str]:
    """The demo tenant with one archived message past its retention."""
    svc = _services(wd, env)
    try:
        async with svc.db.session() as s:
            tenant = (await s.execute(select(Tenant))).scalars().first()
            assert tenant is not None
        entry = await archived(svc, tenant.id, "board minutes")
        return tenant.id, entry.id, entry.object_id
    finally:
        await svc.close()


def _corrupt(wd: Path, env: dict[str, str], name: str) -> None:
    svc = _services(wd, env)
    with svc.store.open(name) as fh:
        blob = bytearray(fh.read())
    blob[-3] ^= 0xFF
    svc.store.put(name, [bytes(blob)])
    asyncio.run(svc.close())


def test_tenant_retention_settings(workdir: tuple[Path, dict[str, str]]) -> None:  # noqa: F811
    wd, env = workdir
    tid, _entry, _obj = asyncio.run(_fill(wd, env))
    p = sm(
        "tenant", "update", tid, "--archive-retention", "10y", "--portal-retention", "30d",
        "--json", cwd=wd, env=env,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["changed"] == {
        "archive_retention_days": 3653,
        "portal_retention_days": 30,
    }
    p = sm("tenant", "show", tid, "--json", cwd=wd, env=env)
    shown = json.loads(p.stdout)
    assert shown["archive_retention_days"] == 3653 and shown["portal_retention_days"] == 30
    p = sm("tenant", "show", tid, cwd=wd, env=env)
    assert "archive 3653 days, portal 30 days" in p.stdout
    p = sm("tenant", "update", tid, "--portal-retention", "3 months", cwd=wd, env=env)
    assert p.returncode == 1
    assert p.stderr.strip().count("\n") == 0 and "portal retention" in p.stderr


def test_hold_sweep_verify(workdir: tuple[Path, dict[str, str]]) -> None:  # noqa: F811
    wd, env = workdir
    tid, entry_id, object_id = asyncio.run(_fill(wd, env))

    p = sm("archive", "hold", "place", tid, "--name", "Case 17", cwd=wd, env=env)
    assert p.returncode == 2 and "exactly one of" in p.stderr  # what to hold is missing
    p = sm("archive", "hold", "place", tid, "--name", "Case 17", "--subject", "board",
           "--reason", "litigation", "--json", cwd=wd, env=env)  # fmt: skip
    assert p.returncode == 0, p.stderr
    hold = json.loads(p.stdout)
    assert hold["kind"] == "search" and hold["items"] == 1 and hold["active"]
    assert "board" not in p.stdout  # the criteria are kept only as a keyed hash

    p = sm("archive", "hold", "list", "--json", cwd=wd, env=env)
    assert [h["id"] for h in json.loads(p.stdout)] == [hold["id"]]
    p = sm("archive", "hold", "list", cwd=wd, env=env)
    assert hold["id"] in p.stdout and "Case 17" in p.stdout

    p = sm("archive", "sweep", "--dry-run", "--json", cwd=wd, env=env)
    assert p.returncode == 0, p.stderr
    report = json.loads(p.stdout)
    assert report["dry_run"] and report["entries_due"] == 0 and report["entries_held"] == 1
    p = sm("archive", "sweep", "--json", cwd=wd, env=env)
    assert json.loads(p.stdout)["entries_shredded"] == 0

    p = sm("archive", "verify", cwd=wd, env=env)
    assert p.returncode == 0, p.stderr
    assert "checked 2 objects" in p.stdout and "0 damaged" in p.stdout

    _corrupt(wd, env, object_id)
    p = sm("archive", "verify", "--json", cwd=wd, env=env)
    assert p.returncode == 1
    damaged = json.loads(p.stdout)["damaged"]
    assert [(d["object_id"], d["tenant_id"]) for d in damaged] == [(object_id, tid)]
    p = sm("archive", "verify", "--tenant", tid, cwd=wd, env=env)
    assert p.returncode == 1 and object_id in p.stdout and "damaged" in p.stdout

    p = sm("archive", "hold", "release", hold["id"], "--json", cwd=wd, env=env)
    assert p.returncode == 0 and json.loads(p.stdout)["released_at"]
    p = sm("archive", "hold", "release", hold["id"], cwd=wd, env=env)
    assert p.returncode == 1 and "already released" in p.stderr
    p = sm("archive", "hold", "release", "h_nothere", cwd=wd, env=env)
    assert p.returncode == 1 and "no legal hold" in p.stderr

    p = sm("archive", "sweep", cwd=wd, env=env)
    assert p.returncode == 0, p.stderr
    assert "shredded 1 archive entries" in p.stdout
    p = sm("archive", "verify", "--json", cwd=wd, env=env)
    assert p.returncode == 0 and json.loads(p.stdout)["checked"] == 0  # nothing live left
    p = sm("archive", "sweep", "--tenant", "nosuchtenant", cwd=wd, env=env)
    assert p.returncode == 1 and p.stderr.startswith("sealmail:")
    assert entry_id
