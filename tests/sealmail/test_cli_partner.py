"""The partner commands as an operator runs them (issue 14), on both databases: people who
may sign in to /partner (roles, the last partner admin kept), the NFR agreement, a partner
key shown once, a trial with its last day; every failure one line and exit 1, wrong usage 2."""

from __future__ import annotations

import json
from pathlib import Path

from tests.sealmail.test_cli import sm, workdir  # noqa: F401


def test_partner_people_agreement_keys_and_trials(workdir: tuple[Path, dict[str, str]]) -> None:  # noqa: F811
    wd, env = workdir
    cfg = str(wd / "sealmail.toml")

    def run(*args: str):  # noqa: ANN202
        return sm("--config", cfg, *args, cwd=wd, env=env)

    assert run("partner", "create", "Northwind IT").returncode == 0
    added = run("partner", "user", "add", "Northwind IT", "Boss@Northwind.example", "--json")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["role"] == "partner-admin"
    assert json.loads(added.stdout)["email"] == "boss@northwind.example"
    again = run("partner", "user", "add", "Northwind IT", "boss@northwind.example")
    assert again.returncode == 1 and "already works for" in again.stderr
    assert (
        run("partner", "user", "add", "Northwind IT", "x@y.example", "--role", "owner").returncode
        == 2
    )
    last = run("partner", "user", "remove", "Northwind IT", "boss@northwind.example")
    assert last.returncode == 1 and "last partner admin" in last.stderr
    assert last.stderr.strip().count("\n") == 0
    nfr = run(
        "partner", "update", "Northwind IT", "--nfr-users", "3", "--nfr-messages", "100", "--json"
    )
    assert json.loads(nfr.stdout) == {
        "id": json.loads(nfr.stdout)["id"], "name": "Northwind IT",
        "nfr_max_users": 3, "nfr_max_messages": 100,
    }  # fmt: skip
    key = json.loads(run("partner", "key", "add", "Northwind IT", "PSA", "--json").stdout)
    assert key["key"].startswith("smp_") and key["label"] == "PSA"
    bad = run("tenant", "create", "Acme", "--domain", "acme.example", "--partner", "Northwind IT",
              "--plan", "trial", "--trial-ends", "next week")  # fmt: skip
    assert bad.returncode == 1 and "YYYY-MM-DD" in bad.stderr
    made = run("tenant", "create", "Acme", "--domain", "acme.example", "--partner", "Northwind IT",
               "--plan", "trial", "--trial-ends", "2030-01-31", "--json")  # fmt: skip
    assert made.returncode == 0, made.stderr
    shown = json.loads(run("partner", "show", "Northwind IT", "--json").stdout)
    assert shown["nfr_max_users"] == 3 and shown["people"] == [
        {"email": "boss@northwind.example", "role": "partner-admin"}
    ]
    assert shown["tenants"][0]["trial_ends_on"] == "2030-01-31"
    converted = json.loads(run("tenant", "update", "Acme", "--plan", "paid", "--json").stdout)
    assert converted["changed"] == {"plan": "paid"}
    tenant = json.loads(run("tenant", "show", "Acme", "--json").stdout)
    assert tenant["plan"] == "paid" and tenant["trial_ends_on"] is None
    # a key never shows again
    assert key["key"] not in json.dumps(shown)
