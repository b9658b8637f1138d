"""``/admin/policy`` and ``/admin/audit`` on both databases (issue 13, item 8): errors at their
line, versions with who saved them, the dry run in sentences, roll-back, who may do what;
the audit log's filters, its tenant scope and its streamed, formula-safe CSV export."""

from __future__ import annotations

import csv
import io
import json

from sqlalchemy import insert, select

from core.accounts.tenants import get_tenant
from core.accounts.users import add_user
from core.models import AuditEvent
from core.policy.model import parse_policy
from core.policy.models import PolicyVersion, TenantPolicy
from core.policy.store import set_policy
from tests.portal.conftest import World, csrf_of
from tests.portal.test_admin import _add_user, sign_in

ADMIN = "admin@acme.example"
OFFICER = "officer@acme.example"
CARDS = "rules:\n  - name: cards\n    when:\n      detector: [credit_card]\n    action: encrypt\n"
HOLD = "rules:\n  - name: deals\n    when:\n      subject_contains: [merger]\n    action: hold\n"


def _setup(world: World) -> str:
    t = world.tenant("Acme", "acme.example")
    world.run(_add_user, world.services, t, ADMIN, "admin")
    world.run(_add_user, world.services, t, OFFICER, "compliance")
    return t


def _save(world: World, text: str, note: str = ""):  # noqa: ANN202
    page = world.client.get("/admin/policy")
    return world.client.post(
        "/admin/policy",
        data={"csrf": csrf_of(page.text), "document": text, "note": note},
        follow_redirects=False,
    )


async def _versions(world: World, tenant_id: str) -> list[PolicyVersion]:
    async with world.services.db.session() as s:
        stmt = select(PolicyVersion).where(PolicyVersion.tenant_id == tenant_id)
        return list((await s.execute(stmt.order_by(PolicyVersion.version))).scalars())


def test_errors_at_their_line_and_versions_with_who(world: World) -> None:
    t = _setup(world)
    sign_in(world, ADMIN)
    r = _save(
        world,
        "rules:\n  - name: x\n    when:\n      detector: [credit_kard]\n    action: encrypt\n",
    )
    assert r.status_code == 400 and "Line 4" in r.text and "credit_kard" in r.text
    r = _save(world, "rules: [\n")  # YAML that does not parse
    assert r.status_code == 400 and "Line " in r.text
    assert world.run(_versions, world, t) == []  # nothing saved

    assert _save(world, CARDS, note="cards first").status_code == 303
    assert _save(world, HOLD).status_code == 303
    rows = world.run(_versions, world, t)
    assert [(v.version, v.created_by, v.note) for v in rows] == [
        (1, ADMIN, "cards first"),
        (2, ADMIN, ""),
    ]
    page = world.client.get("/admin/policy")
    assert "This is version 2" in page.text and "deals" in page.text

    history = world.client.get("/admin/policy/history")
    assert "Version 1" in history.text and "cards first" in history.text
    v1 = world.client.get("/admin/policy/versions/1")
    assert v1.status_code == 200 and "cards" in v1.text and "Roll back to version 1" in v1.text
    assert world.client.get("/admin/policy/versions/9").status_code == 404
    assert world.client.get("/admin/policy/versions/x").status_code == 404
    r = world.client.post(
        "/admin/policy/versions/1/rollback", data={"csrf": csrf_of(v1.text)}, follow_redirects=False
    )
    assert r.status_code == 303
    rows = world.run(_versions, world, t)
    assert rows[-1].version == 3 and rows[-1].document == rows[0].document
    assert rows[-1].note == "rolled back to version 1"


def test_the_dry_run_tries_unsaved_text_in_sentences(world: World) -> None:
    _setup(world)
    sign_in(world, OFFICER)  # compliance officers may try, not save
    page = world.client.get("/admin/policy")
    assert "Save the policy" not in page.text
    message = "Subject: booking\n\nThe card is 4111 1111 1111 1111.\n"
    r = world.client.post(
        "/admin/policy/dry-run",
        data={
            "csrf": csrf_of(page.text),
            "document": CARDS,
            "message": message,
            "mail_from": "alice@acme.example",
            "rcpts": "bob@client.example, carol@client.example",
        },
    )
    assert r.status_code == 200, r.text
    assert "What the policy would do" in r.text and "carol@client.example" in r.text
    assert "credit card number" in r.text and "cards" in r.text
    assert "{" not in r.text.split("What the policy would do")[1].split("</section>")[0]
    # an officer cannot save
    r = world.client.post("/admin/policy", data={"csrf": csrf_of(page.text), "document": CARDS})
    assert r.status_code == 404


def test_history_from_the_cli_and_a_policy_saved_before_history(world: World) -> None:
    t = _setup(world)

    async def legacy_then_save() -> None:
        async with world.services.db.session() as s:  # as an older release left it
            s.add(TenantPolicy(tenant_id=t, document=json.dumps({"rules": []}), version=4))
            await s.commit()
        async with world.services.db.session() as s:
            await set_policy(s, t, parse_policy(CARDS), "cli")
            await s.commit()

    world.run(legacy_then_save)
    rows = world.run(_versions, world, t)
    assert [(v.version, v.created_by) for v in rows] == [(4, ""), (5, "cli")]
    assert rows[0].note == "saved before the history was kept"


async def _events(world: World, tenant_id: str, other: str, n: int) -> None:
    async with world.services.db.session() as s:
        rows = [
            {
                "tenant_id": tenant_id,
                "actor": "bulk@acme.example",
                "action": "quarantine.view",
                "subject_id": f"h_{i}",
                "detail": "{}",
                "at": 1_700_000_000.0 + i,
            }
            for i in range(n)
        ]
        rows.append(
            {
                "tenant_id": tenant_id,
                "actor": '=HYPERLINK("http://evil")',
                "action": "tenant.update",
                "subject_id": tenant_id,
                "detail": json.dumps({"journal_address": "j@x.example"}),
                "at": 1_760_000_000.0,
            }
        )
        rows.append(
            {
                "tenant_id": other,
                "actor": "secret@beta.example",
                "action": "user.add",
                "subject_id": "u",
                "detail": "{}",
                "at": 1_760_000_000.0,
            }
        )
        await s.execute(insert(AuditEvent), rows)
        await s.commit()


def test_the_audit_log_filters_scopes_and_exports(world: World) -> None:
    t = _setup(world)
    other = world.tenant("Beta", "beta.example")
    world.run(_events, world, t, other, 20_000)
    sign_in(world, OFFICER)
    page = world.client.get("/admin/audit")
    assert page.status_code == 200
    assert "secret@beta.example" not in page.text
    assert "looked at a held message" in page.text and "Older events" in page.text

    only = world.client.get("/admin/audit", params={"action": "tenant.update"})
    assert "changed the tenant&#39;s settings" in only.text or "changed the tenant's" in only.text
    assert "bulk@acme.example" not in only.text
    dated = world.client.get("/admin/audit", params={"after": "2025-10-01"})
    assert "bulk@acme.example" not in dated.text and "HYPERLINK" in dated.text
    bad = world.client.get("/admin/audit", params={"after": "yesterday"})
    assert bad.status_code == 400 and "is not a date" in bad.text

    with world.client.stream("GET", "/admin/audit.csv") as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        body = b"".join(r.iter_bytes()).decode()
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0][:3] == ["time_utc", "actor", "action"]
    actors = [row[1] for row in rows[1:]]
    assert "secret@beta.example" not in actors
    assert actors.count("bulk@acme.example") == 20_000
    assert '\'=HYPERLINK("http://evil")' in actors  # never a formula in a spreadsheet
    # the sign-ins of this test are in the log too; every row is this tenant's
    filtered = world.client.get("/admin/audit.csv", params={"actor": "bulk@"}).text
    assert len(list(csv.reader(io.StringIO(filtered)))) == 20_001


def test_senders_cannot_read_the_audit_log(world: World) -> None:
    t = _setup(world)

    async def sender() -> None:
        async with world.services.db.session() as s:
            await add_user(s, await get_tenant(s, t), "sam@acme.example", "sender")
            await s.commit()

    world.run(sender)
    r = world.client.get("/admin/audit", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/admin/login"
