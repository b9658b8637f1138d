"""``sealmail support ...`` through the real command line, on both databases: the PIN comes
from standard input and never from the arguments; exit 0 on a match, 1 otherwise; the fifth
failure locks and mails the contact; agents; the letter."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import time
from pathlib import Path

import pypdf
import pytest
from sqlalchemy import select

from core.config.loading import load_settings
from core.models import AuditEvent
from core.services import Services
from support import pins
from tests.portal.test_support import mails_to
from tests.sealmail.test_cli import SEALMAIL, sm, workdir  # noqa: F401 - the fixture
from tests.support.test_pins import give_pin, make_account

ANN = "ann@acme.test"


def run(
    *args: str, cwd: Path, env: dict[str, str], stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SEALMAIL_")}
    return subprocess.run(
        [*SEALMAIL, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, **env},
        input=stdin,
    )


def services_of(cwd: Path, env: dict[str, str]) -> Services:
    return Services.open(load_settings(cwd / "sealmail.toml", env=env))


def seed(cwd: Path, env: dict[str, str], name: str = "Acme", who: str = ANN, **kw: str) -> str:
    async def go() -> str:
        svc = services_of(cwd, env)
        try:
            _, cid = await make_account(svc, name, f"{name.lower()}.test", who, **kw)
            return await give_pin(svc, cid)
        finally:
            await svc.close()

    return asyncio.run(go())


def fail_in_process(cwd: Path, env: dict[str, str], wrong: str, times: int) -> None:
    """Earlier wrong PINs at the desk (the same check the CLI runs), to keep the test short."""

    async def go() -> None:
        svc = services_of(cwd, env)
        try:
            for _ in range(times):
                async with svc.db.session() as s:
                    await pins.check_pin(
                        s, pins.email_key(svc.root_key), ANN, wrong, agent="portal-desk"
                    )
                    await s.commit()
        finally:
            await svc.close()

    asyncio.run(go())


def test_verify_reads_the_pin_from_stdin_never_an_argument(workdir) -> None:  # noqa: ANN001, F811
    cwd, env = workdir
    pin = seed(cwd, env)
    ok = run("support", "verify", ANN, "--json", cwd=cwd, env=env, stdin=pin + "\n")
    assert ok.returncode == 0, ok.stderr
    data = json.loads(ok.stdout)
    assert (data["result"], data["account"], data["standing"]) == ("match", "Acme Ltd", "good")
    allowed = {a["key"]: a["allowed"] for a in data["actions"]}
    assert allowed["invoices_pricing"] and allowed["open_ticket"]
    assert allowed["add_contact"] is False and allowed["delete_service"] is False
    text = run("support", "verify", ANN, cwd=cwd, env=env, stdin=pin)
    assert text.returncode == 0 and "match: Acme Ltd (standing: good)" in text.stdout
    assert "REFUSED" in text.stdout
    # the PIN as an argument or an option: wrong usage, and nothing is checked
    arg = run("support", "verify", ANN, pin, cwd=cwd, env=env, stdin=pin)
    assert arg.returncode == 2 and "never an argument" in arg.stderr
    opt = run("support", "verify", ANN, "--pin", pin, cwd=cwd, env=env, stdin=pin)
    assert opt.returncode == 2
    empty = run("support", "verify", ANN, cwd=cwd, env=env, stdin="")
    assert empty.returncode == 1 and len(empty.stderr.strip().splitlines()) == 1
    bad = run("support", "verify", "not-an-address", cwd=cwd, env=env, stdin=pin)
    assert bad.returncode == 2

    async def audited() -> list[str]:
        svc = services_of(cwd, env)
        try:
            async with svc.db.session() as s:
                rows = await s.execute(
                    select(AuditEvent).where(AuditEvent.action == "support.pin.check")
                )
                return [e.detail for e in rows.scalars()]
        finally:
            await svc.close()

    details = asyncio.run(audited())
    assert len(details) == 2  # the two real checks; refused invocations checked nothing
    assert all(pin not in d for d in details)

    # three wrong PINs earlier at the desk, two more here: the fifth locks and mails
    wrong = "000000" if pin != "000000" else "000001"
    fail_in_process(cwd, env, wrong, 3)
    for n in (4, 5):
        p = run("support", "verify", ANN, cwd=cwd, env=env, stdin=wrong)
        assert p.returncode == 1 and p.stdout == ""
        assert len(p.stderr.strip().splitlines()) == 1
        assert ("locked" in p.stderr) is (n == 5), p.stderr
        if n == 4:
            assert "1 try left before the PIN locks" in p.stderr, p.stderr
    p = run("support", "verify", ANN, "--json", cwd=cwd, env=env, stdin=pin)
    assert p.returncode == 1
    data = json.loads(p.stdout)
    assert data["result"] == "locked" and data["match"] is False
    assert [a["key"] for a in data["actions"] if a["allowed"]] == ["public_information"]

    async def mails() -> list[str]:
        svc = services_of(cwd, env)
        try:
            return [m["Subject"] for _k, m in await mails_to(svc, ANN)]
        finally:
            await svc.close()

    assert asyncio.run(mails()) == ["Your support PIN is locked"]

    # a suspended account: the PIN matches, only public information is allowed
    bob_pin = seed(cwd, env, "Beta", "bob@beta.test", standing="suspended")
    p = run("support", "verify", "bob@beta.test", "--json", cwd=cwd, env=env, stdin=bob_pin)
    assert p.returncode == 0
    data = json.loads(p.stdout)
    assert data["standing"] == "suspended"
    assert [a["key"] for a in data["actions"] if a["allowed"]] == ["public_information"]
    p = run("support", "verify", "carl@acme.test", cwd=cwd, env=env, stdin=pin)
    assert p.returncode == 1 and "no contact record" in p.stderr


def test_agents_and_the_letter(workdir, tmp_path: Path) -> None:  # noqa: ANN001, F811
    cwd, env = workdir
    seed(cwd, env)
    assert sm("partner", "create", "MSP-A", cwd=cwd, env=env).returncode == 0
    added = run("support", "agent", "add", "Desk@Op.test", "--json", cwd=cwd, env=env)
    assert added.returncode == 0, added.stderr
    key = json.loads(added.stdout)["key"]
    assert key.startswith("sma_") and len(key) > 40
    msp = run("support", "agent", "add", "desk@msp-a.test", "--partner", "MSP-A", cwd=cwd, env=env)
    assert msp.returncode == 0 and "agent key (shown once): sma_" in msp.stdout
    again = run("support", "agent", "add", "desk@op.test", cwd=cwd, env=env)
    assert again.returncode == 1 and "already a support agent" in again.stderr
    listed = json.loads(run("support", "agent", "list", "--json", cwd=cwd, env=env).stdout)
    assert [(a["email"], a["partner"]) for a in listed] == [
        ("desk@msp-a.test", "MSP-A"),
        ("desk@op.test", ""),
    ]
    assert key not in json.dumps(listed)
    rotated = run("support", "agent", "key", "desk@op.test", "--json", cwd=cwd, env=env)
    assert json.loads(rotated.stdout)["key"] != key
    assert run("support", "agent", "remove", "desk@op.test", cwd=cwd, env=env).returncode == 0
    gone = run("support", "agent", "remove", "desk@op.test", cwd=cwd, env=env)
    assert gone.returncode == 1 and "no support agent" in gone.stderr

    out = tmp_path / "letter.pdf"
    p = run("support", "letter", "carl@acme.test", "--name", "Carl", "--named", "acme.test",
            "--out", str(out), "--json", cwd=cwd, env=env)  # fmt: skip
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout)
    text = " ".join(pypdf.PdfReader(io.BytesIO(out.read_bytes())).pages[0].extract_text().split())
    assert info["account"] == "Acme Ltd" and info["reference"] in text
    assert "To whoever manages the account Acme Ltd" in text and "carl@acme.test" in text
    p = run("support", "letter", "carl@acme.test", "--out", str(tmp_path / "no/such/dir.pdf"),
            cwd=cwd, env=env)  # fmt: skip
    assert p.returncode == 1 and "cannot write" in p.stderr


def test_every_support_command_has_config_and_json_where_it_prints_data() -> None:
    import click

    from sealmail.cli.main import cli

    support = cli.commands["support"]
    assert isinstance(support, click.Group)

    def leaves(group: click.Group, prefix: str = "") -> dict[str, click.Command]:
        out: dict[str, click.Command] = {}
        for name, cmd in group.commands.items():
            if isinstance(cmd, click.Group):
                out.update(leaves(cmd, f"{prefix}{name} "))
            else:
                out[f"{prefix}{name}"] = cmd
        return out

    commands = leaves(support)
    assert set(commands) == {
        "verify", "letter", "agent add", "agent key", "agent list", "agent remove",
    }  # fmt: skip
    for name, cmd in commands.items():
        options = {o for p in cmd.params for o in getattr(p, "opts", [])}
        assert "--config" in options, name
        if name != "agent remove":  # prints one confirmation line, no data
            assert "--json" in options, name
        assert "--pin" not in options, name


def test_verify_prompts_without_echo_on_a_terminal(workdir, db_url: str) -> None:  # noqa: ANN001, F811
    """On a terminal the PIN is asked for with echo off: it never shows on the screen."""
    import pty
    import select as select_

    if not db_url.startswith("sqlite"):
        pytest.skip("terminal handling does not depend on the database")
    cwd, env = workdir
    pin = seed(cwd, env)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SEALMAIL_")}
    pid, fd = pty.fork()
    if pid == 0:  # the child: the pty is its controlling terminal
        try:
            os.chdir(cwd)
            os.execve(SEALMAIL[0], [*SEALMAIL, "support", "verify", ANN], {**clean, **env})  # noqa: S606
        finally:
            os._exit(127)  # never run the rest of the test suite in the child
    seen = b""

    def read_until(marker: bytes, timeout: float = 60.0) -> None:
        nonlocal seen
        deadline = time.monotonic() + timeout
        while marker not in seen:
            assert time.monotonic() < deadline, seen
            ready, _, _ = select_.select([fd], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk

    read_until(b"PIN the caller gives:")
    os.write(fd, pin.encode() + b"\n")
    read_until(b"match")
    read_until(b"REFUSED")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, seen
    assert pin.encode() not in seen  # not echoed, not printed
    assert b"match: Acme Ltd" in seen
