"""``sealmail tenant create --partner P`` while P's billing account is suspended (or
terminated): the new tenant gets that standing at once, not at the next billing run."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from core.db import Database
from core.ids import new_id
from core.models import BillingAccount, Partner
from tests.sealmail.test_cli import sm


async def _partner_account(url: str, standing: str) -> None:
    db = Database(url)
    try:
        async with db.session() as s:
            partner = (await s.execute(select(Partner))).scalar_one()
            s.add(
                BillingAccount(
                    id=new_id("ba_"),
                    external_id=f"acct_{standing}",
                    kind="partner",
                    partner_id=partner.id,
                    name="MSP",
                    standing=standing,
                    standing_reason="billing" if standing == "suspended" else "cancelled",
                )
            )
            await s.commit()
    finally:
        await db.dispose()


@pytest.mark.parametrize("standing", ["suspended", "terminated", "good"])
def test_new_tenant_of_a_partner_takes_its_accounts_standing(
    tmp_path: Path, db_url: str, standing: str
) -> None:
    env = {} if db_url.startswith("sqlite") else {"SEALMAIL_DATABASE_URL": db_url}
    assert sm("init", "--dir", str(tmp_path / "w"), cwd=tmp_path, env=env).returncode == 0
    wd = tmp_path / "w"
    cfg = str(wd / "sealmail.toml")
    assert sm("--config", cfg, "partner", "create", "MSP", cwd=wd, env=env).returncode == 0
    url = db_url if not db_url.startswith("sqlite") else f"sqlite:///{wd}/var/sealmail.db"
    asyncio.run(_partner_account(url, standing))
    made = sm(
        "--config", cfg, "tenant", "create", "Newco", "--domain", "newco.example",
        "--partner", "MSP", "--json", cwd=wd, env=env,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    expected = "active" if standing == "good" else standing
    assert json.loads(made.stdout)["standing"] == expected
    shown = sm("--config", cfg, "tenant", "show", "Newco", "--json", cwd=wd, env=env)
    assert json.loads(shown.stdout)["standing"] == expected
    text = sm(
        "--config", cfg, "tenant", "create", "Other", "--domain", "other.example",
        "--partner", "MSP", cwd=wd, env=env,
    )  # fmt: skip
    assert text.returncode == 0, text.stderr
    assert ("partner's billing account is" in text.stdout) == (standing != "good")
