"""``sealmail archive reindex|search|export`` as a user runs them: a working directory from
``sealmail init`` (SQLite or PostgreSQL), messages processed before the index existed,
backfilled by ``reindex``, then searched and exported; the audit log has no query text."""

from __future__ import annotations

import asyncio
import hashlib
import json
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import select

from archive.models import ArchiveEntry
from core.config.loading import load_settings
from core.ids import new_id
from core.models import AuditEvent, Message, MessageRecipient, Tenant
from core.services import Services
from tests.sealmail.test_cli import sm, workdir  # noqa: F401 - fixture

SECRET_WORD = "Xylophone"


def original(n: int) -> bytes:
    return (
        f"From: Alice <alice@demo.example>\r\nTo: bob{n}@partner.example\r\n"
        f"Subject: Report {n} {SECRET_WORD if n % 2 else 'plain'}\r\n"
        "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain\r\n\r\nBody {n}\r\nFrom the start of a line\r\n"
    ).encode()


async def _seed(cfg: Path, env: dict[str, str], count: int) -> dict[str, bytes]:
    """Processed messages with no archive entry, as before migration 0004."""
    overrides = {"database_url": env["SEALMAIL_DATABASE_URL"]} if env else {}
    svc = Services.open(load_settings(str(cfg), overrides=overrides))
    out: dict[str, bytes] = {}
    try:
        async with svc.db.session() as s:
            tenant = (await s.execute(select(Tenant).where(Tenant.name == "demo"))).scalar_one()
            for n in range(count):
                raw = original(n)
                obj = await svc.vault.seal(s, tenant.id, raw, kind="raw")
                mid = new_id("q_")
                s.add(
                    Message(
                        id=mid, tenant_id=tenant.id, mail_from="alice@demo.example",
                        size=len(raw), state="processed", disposition="clear",
                        raw_object_id=obj.id, received_at=1_700_000_000.0 + n,
                    )
                )  # fmt: skip
                await s.flush()
                s.add(
                    MessageRecipient(
                        message_id=mid, rcpt=f"bob{n}@partner.example", disposition="clear",
                        state="done",
                    )
                )  # fmt: skip
                out[mid] = raw
            await s.commit()
    finally:
        await svc.close()
    return out


async def _rows(cfg: Path, env: dict[str, str], model):  # noqa: ANN001, ANN202
    overrides = {"database_url": env["SEALMAIL_DATABASE_URL"]} if env else {}
    svc = Services.open(load_settings(str(cfg), overrides=overrides))
    try:
        async with svc.db.session() as s:
            return list((await s.execute(select(model))).scalars().all())
    finally:
        await svc.close()


def test_reindex_search_export(workdir: tuple[Path, dict[str, str]]) -> None:  # noqa: F811
    wd, env = workdir
    cfg = wd / "sealmail.toml"
    originals = asyncio.run(_seed(cfg, env, 5))

    def run(*args: str):  # noqa: ANN202
        return sm("archive", *args, "--config", str(cfg), cwd=wd, env=env)

    r = run("reindex", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"indexed": 5}
    assert json.loads(run("reindex", "demo", "--json").stdout) == {"indexed": 0}  # idempotent

    r = run("search", "demo", "--subject", SECRET_WORD.lower(), "--json")
    assert r.returncode == 0, r.stderr
    page = json.loads(r.stdout)
    assert page["total"] == 2
    assert sorted(i["subject"] for i in page["items"]) == [
        f"Report 1 {SECRET_WORD}",
        f"Report 3 {SECRET_WORD}",
    ]
    assert all(i["decision"] == "clear" for i in page["items"])
    r = run("search", "demo", "--to", "bob4@partner.example", "--json")
    assert [i["to"] for i in json.loads(r.stdout)["items"]] == [["bob4@partner.example"]]
    # pages: newest first, no overlap
    p1 = json.loads(run("search", "demo", "--limit", "2", "--json").stdout)
    p3 = json.loads(run("search", "demo", "--limit", "2", "--page", "3", "--json").stdout)
    assert p1["pages"] == 3 and [i["subject"][:8] for i in p1["items"]] == ["Report 4", "Report 3"]
    assert [i["subject"][:8] for i in p3["items"]] == ["Report 0"]
    # the table for people
    r = run("search", "demo", "--from", "@demo.example")
    assert r.returncode == 0 and "page 1 of 1 (5 messages)" in r.stdout

    # bad input: one line, exit 1; wrong usage: exit 2
    for args in (
        ("search", "demo", "--after", "last week"),
        ("search", "nobody"),
        ("search", "demo", "--decision", "maybe"),
    ):
        r = run(*args)
        assert r.returncode == 1 and r.stderr.startswith("sealmail: "), (args, r.stderr)
        assert r.stderr.strip().count("\n") == 0
    assert run("search").returncode == 2
    assert run("export", "demo", "--output", str(wd / "x")).returncode == 2  # no --format

    # export: zip of the whole tenant, digests checked
    out = wd / "all.zip"
    r = run("export", "demo", "--format", "zip", "--output", str(out), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["entries"] == 5
    with zipfile.ZipFile(out) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        bodies = {row["entry_id"]: zf.read(row["file"]) for row in manifest["files"]}
        for row in manifest["files"]:
            assert hashlib.sha256(bodies[row["entry_id"]]).hexdigest() == row["sha256"]
            assert row["verified"] is True
    assert sorted(bodies.values()) == sorted(originals.values())
    assert (out.stat().st_mode & 0o777) == 0o600
    again = run("export", "demo", "--format", "zip", "--output", str(out))
    assert again.returncode == 1 and "already exists" in again.stderr
    # mbox of a search result, From lines in bodies quoted
    box = wd / "x.mbox"
    r = run("export", "demo", "--subject", SECRET_WORD, "--format", "mbox", "--output", str(box))
    assert r.returncode == 0, r.stderr
    data = box.read_bytes()
    assert data.count(b"\nFrom alice@demo.example ") + data.startswith(b"From alice@") == 2
    assert data.count(b"\n>From the start of a line\n") == 2

    # the audit log: every search and export, no query text
    events = asyncio.run(_rows(cfg, env, AuditEvent))
    mine = [e for e in events if e.action.startswith("archive.")]
    assert {e.action for e in mine} == {"archive.search", "archive.export"}
    assert len([e for e in mine if e.action == "archive.export"]) == 2
    for e in mine:
        assert SECRET_WORD.lower() not in e.detail.lower() and "bob4" not in e.detail
        assert json.loads(e.detail)["criteria"] >= 0
    entries = asyncio.run(_rows(cfg, env, ArchiveEntry))
    assert len(entries) == 5 and all(e.source == "gateway" for e in entries)


@pytest.mark.parametrize("fmt", ["mbox"])
def test_export_of_nothing(workdir: tuple[Path, dict[str, str]], fmt: str) -> None:  # noqa: F811
    wd, env = workdir
    out = wd / "empty.out"
    r = sm(
        "archive", "export", "demo", "--format", fmt, "--output", str(out), "--json",
        "--config", str(wd / "sealmail.toml"), cwd=wd, env=env,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["entries"] == 0 and out.read_bytes() == b""
