"""``sealmail billing run --date`` over a few days against the database, as an operator runs
it: a partner with three tenants goes from an unpaid invoice to suspension, and a payment
reinstates it. Actions, tenants' standing, outbound webhooks and emails are checked in the
database; a second run of the same day does nothing."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import time
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from sqlalchemy import select

from billing_hooks import events
from billing_hooks.models import DunningAction, OutboundWebhook
from branding.billing_mail import billing_mailer
from core.accounts.partners import create_partner
from core.accounts.tenants import create_tenant, set_standing
from core.config.loading import load_settings
from core.models import OutboxItem, OutboxRecipient, Tenant
from core.services import Services
from sealmail.cli.main import cli
from tests.sealmail.test_cli import sm, workdir  # noqa: F401 - the fixture

PAY_URL = "https://pay.example.test/msp"


def _body(event_id: str, type_: str, **data: Any) -> bytes:
    return json.dumps(
        {"id": event_id, "type": type_, "created": time.time(), "data": data}
    ).encode()


async def _setup(wd: Path, env: dict[str, str]) -> dict[str, str]:
    settings = load_settings(wd / "sealmail.toml", env=env)
    svc = Services.open(settings)
    try:
        async with svc.db.session() as s:
            partner = await create_partner(s, "MSP One")
            ids = {}
            for i, name in enumerate(("Alpha", "Beta", "Gamma")):
                creds = await create_tenant(
                    s, svc.keyring, name, [f"t{i}.example"], partner=partner.id
                )
                ids[name] = creds.tenant_id
            gamma = await s.get(Tenant, ids["Gamma"])
            assert gamma is not None
            await set_standing(s, gamma, "suspended", actor="cli")  # by an operator
            await s.commit()
        for body in (
            _body(
                "e1",
                "account.created",
                account="acct_msp",
                kind="partner",
                partner="MSP One",
                name="MSP One Ltd",
                contacts=[{"email": "ap@msp.example", "role": "billing", "phone": "+1 555"}],
            ),
            _body(
                "e2",
                "invoice.created",
                account="acct_msp",
                invoice="in_may",
                number="2027-0042",
                amount=12900,
                currency="EUR",
                due_on="2027-05-01",
            ),
        ):
            result = await events.handle(svc.db, settings, body)
            assert result.status == 200, result.body
        return ids
    finally:
        await svc.close()


async def _state(wd: Path, env: dict[str, str]) -> dict[str, Any]:
    svc = Services.open(load_settings(wd / "sealmail.toml", env=env))
    try:
        async with svc.db.session() as s:
            tenants = {t.name: t.standing for t in (await s.execute(select(Tenant))).scalars()}
            actions = sorted(
                (a.for_date.isoformat(), a.action)
                for a in (await s.execute(select(DunningAction))).scalars()
            )
            hooks = [
                (w.type, json.loads(w.payload)["data"])
                for w in (
                    await s.execute(select(OutboundWebhook).order_by(OutboundWebhook.created_at))
                ).scalars()
            ]
            mails = []
            for item in (
                await s.execute(
                    select(OutboxItem)
                    .where(OutboxItem.kind == "notification")
                    .order_by(OutboxItem.created_at)
                )
            ).scalars():
                assert item.tenant_id is not None
                raw = await svc.vault.read(s, item.tenant_id, item.object_id)
                msg = email.message_from_bytes(raw, policy=email.policy.default)
                rcpts = (
                    (
                        await s.execute(
                            select(OutboxRecipient.rcpt).where(OutboxRecipient.outbox_id == item.id)
                        )
                    )
                    .scalars()
                    .all()
                )
                body = msg.get_body(("plain",))
                assert body is not None
                mails.append((list(rcpts), str(msg["Subject"]), body.get_content()))
        return {"tenants": tenants, "actions": actions, "hooks": hooks, "mails": mails}
    finally:
        await svc.close()


async def _pay(wd: Path, env: dict[str, str]) -> None:
    settings = load_settings(wd / "sealmail.toml", env=env)
    svc = Services.open(settings)
    try:
        body = _body("e3", "invoice.paid", account="acct_msp", invoice="in_may")
        result = await events.handle(svc.db, settings, body, mailer=billing_mailer(svc))
        assert result.body["status"] == "applied"
    finally:
        await svc.close()


def test_billing_run_days_through_the_cli(workdir: tuple[Path, dict[str, str]]) -> None:  # noqa: F811
    wd, env = workdir
    env = {**env, "SEALMAIL_BILLING_PAY_URL": PAY_URL}
    asyncio.run(_setup(wd, env))

    def run(*args: str) -> str:
        # in-process (click's runner): a subprocess per day would cost seconds of imports
        result = CliRunner().invoke(
            cli, ["--config", str(wd / "sealmail.toml"), "billing", "run", *args], env=env
        )
        assert result.exit_code == 0, (result.output, result.exception)
        return result.stdout

    assert "nothing to do" in run("--date", "2027-04-30")
    out = run("--date", "2027-05-01")
    assert "ticket.open" in out and "contact.phone_followup" in out and "MSP One Ltd" in out
    assert "nothing to do" in run("--date", "2027-05-01")  # the same day again
    assert "nothing to do" in run("--date", "2027-05-04")
    dry = json.loads(run("--date", "2027-05-05", "--dry-run", "--json"))
    assert dry["dry_run"] is True
    assert [(a["action"], a["invoice"]) for a in dry["actions"]] == [("fee.late", "in_may")]
    before = asyncio.run(_state(wd, env))
    assert before["actions"] == [
        ("2027-05-01", "contact.phone_followup"),
        ("2027-05-01", "ticket.open"),
    ]  # the dry run took nothing
    real = json.loads(run("--date", "2027-05-05", "--json"))
    assert [a["action"] for a in real["actions"]] == ["fee.late"]
    assert "nothing to do" in run("--date", "2027-05-14")
    assert "service.suspend" in run("--date", "2027-05-15")  # the 15th is over: suspended
    assert "nothing to do" in run("--date", "2027-05-15")

    state = asyncio.run(_state(wd, env))
    assert state["tenants"]["Alpha"] == "suspended" and state["tenants"]["Beta"] == "suspended"
    assert state["tenants"]["Gamma"] == "suspended"  # already, by the operator
    assert [t for t, s in state["tenants"].items() if s == "active"]  # the demo tenant
    assert [h[0] for h in state["hooks"]] == [
        "ticket.open",
        "contact.phone_followup",
        "fee.late",
        "service.suspend",
    ]
    suspend = state["hooks"][-1][1]
    assert suspend["account"] == "acct_msp" and len(suspend["tenants"]) == 2
    assert suspend["invoice"]["number"] == "2027-0042" and suspend["invoice"]["amount"] == 12900
    assert suspend["contacts"][0]["email"] == "ap@msp.example"
    subjects = [(m[0], m[1]) for m in state["mails"]]
    assert subjects == [
        (["ap@msp.example"], "Invoice 2027-0042 is unpaid"),
        (["ap@msp.example"], "Late fee added: invoice 2027-0042"),
        (["ap@msp.example"], "Service suspended: MSP One Ltd"),
    ]
    assert PAY_URL in state["mails"][-1][2] and "129.00 EUR" in state["mails"][0][2]

    asyncio.run(_pay(wd, env))  # invoice.paid: reinstated at once
    state = asyncio.run(_state(wd, env))
    assert (state["tenants"]["Alpha"], state["tenants"]["Beta"]) == ("active", "active")
    assert state["tenants"]["Gamma"] == "suspended"  # billing did not suspend it
    assert state["hooks"][-1][0] == "service.resume"
    assert state["mails"][-1][1] == "Service reinstated: MSP One Ltd"
    assert "nothing to do" in run("--date", "2027-05-20")


def test_billing_run_usage_errors(workdir: tuple[Path, dict[str, str]]) -> None:  # noqa: F811
    wd, env = workdir
    proc = sm("billing", "run", "--date", "15 May", cwd=wd, env=env)
    assert proc.returncode == 2 and "YYYY-MM-DD" in proc.stderr
    proc = sm("billing", "deliver", cwd=wd, env=env)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("sealmail: billing_outbound_url")


def test_serve_refuses_a_bad_schedule_file_at_start(workdir) -> None:  # noqa: ANN001, F811
    """SPEC §2: a bad value stops the program at start with one line. Found live: ``serve``
    started with a broken ``billing_schedule_file`` and only the worker's hourly billing
    run failed, in the log."""
    wd, env = workdir
    bad = wd / "schedule.toml"
    bad.write_text('[[rules]]\naction = "service.suspend"\noffset = -5\n')
    env = {
        **env,
        "SEALMAIL_BILLING_SCHEDULE_FILE": str(bad),
        "SEALMAIL_SMTP_LISTEN": "127.0.0.1:0",
        "SEALMAIL_PORTAL_LISTEN": "127.0.0.1:0",
    }
    proc = sm("serve", cwd=wd, env=env)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert proc.stderr.strip().splitlines() == [
        "sealmail: billing schedule: rule 1 offset must be a whole number >= 0"
    ]
    assert "listening" not in proc.stdout
