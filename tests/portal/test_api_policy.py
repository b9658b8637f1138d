"""``/api/v1/policy``: read, replace (JSON or YAML, 422 with line and field), and the dry run
the Outlook add-in uses; each tenant sees only its own policy."""

from __future__ import annotations

import base64

from core.accounts.tenants import create_tenant
from tests.core.policy.mail import mail, make_pdf
from tests.portal.conftest import World

YAML = """\
rules:
  - name: cards
    when: {detector: credit_card}
    action: encrypt
  - name: lawyers
    when: {recipient_domain: lawfirm.example}
    action: require_tls
"""
CARD = "4111 1111 1111 1111"


async def _tenant_with_key(world: World, name: str, domain: str) -> tuple[str, str]:
    async with world.services.db.session() as s:
        creds = await create_tenant(s, world.services.keyring, name, [domain])
        await s.commit()
    return creds.tenant_id, creds.api_key


def _auth(key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}


def test_get_put_yaml_and_json_with_versions(world: World) -> None:
    _a, key = world.run(_tenant_with_key, world, "TenantA", "a.example")
    _b, other = world.run(_tenant_with_key, world, "TenantB", "b.example")
    empty = world.client.get("/api/v1/policy", headers=_auth(key))
    assert empty.status_code == 200
    assert empty.json()["version"] == 0 and empty.json()["policy"]["rules"] == []

    put = world.client.put(
        "/api/v1/policy", content=YAML, headers=_auth(key, **{"Content-Type": "application/yaml"})
    )
    assert put.status_code == 200, put.text
    assert put.json() == {"version": 1, "rules": 2}
    got = world.client.get("/api/v1/policy", headers=_auth(key))
    assert got.headers["etag"] == '"v1"'
    doc = got.json()["policy"]
    assert [r["name"] for r in doc["rules"]] == ["cards", "lawyers"]

    doc["encrypt_external"] = True
    stale = world.client.put("/api/v1/policy", json=doc, headers=_auth(key, **{"If-Match": '"v0"'}))
    assert stale.status_code == 412
    again = world.client.put("/api/v1/policy", json=doc, headers=_auth(key, **{"If-Match": '"v1"'}))
    assert again.status_code == 200 and again.json()["version"] == 2
    assert world.client.get("/api/v1/policy", headers=_auth(key)).json()["policy"] == doc

    # another tenant's key sees its own (empty) policy
    assert world.client.get("/api/v1/policy", headers=_auth(other)).json()["version"] == 0
    assert world.client.get("/api/v1/policy").status_code == 401


def test_put_errors_name_line_and_field(world: World) -> None:
    _a, key = world.run(_tenant_with_key, world, "TenantA", "a.example")
    bad = world.client.put(
        "/api/v1/policy",
        content=YAML.replace("credit_card", "ccn"),
        headers=_auth(key, **{"Content-Type": "application/yaml"}),
    )
    assert bad.status_code == 422
    assert bad.json()["line"] == 3 and bad.json()["field"] == "rules[0].when.detector"
    assert bad.json()["error"].startswith("line 3: rules[0].when.detector: unknown detector")
    badjson = world.client.put(
        "/api/v1/policy",
        content='{\n "rules": [\n  {"name": "x", "action": "explode"}\n ]\n}',
        headers=_auth(key, **{"Content-Type": "application/json"}),
    )
    assert badjson.status_code == 422 and badjson.json()["line"] == 3
    assert badjson.json()["field"] == "rules[0].action"
    other = world.client.put(
        "/api/v1/policy", content=YAML, headers=_auth(key, **{"Content-Type": "text/plain"})
    )
    assert other.status_code == 415
    assert world.client.get("/api/v1/policy", headers=_auth(key)).json()["version"] == 0


def test_dry_run_rfc822_and_json(world: World) -> None:
    _a, key = world.run(_tenant_with_key, world, "TenantA", "a.example")
    world.client.put(
        "/api/v1/policy", content=YAML, headers=_auth(key, **{"Content-Type": "application/yaml"})
    )
    raw = mail(body=f"card {CARD}", sender="alice@a.example")
    r = world.client.post(
        "/api/v1/policy/dry-run?mail_from=alice@a.example&rcpt=bob@x.example&rcpt=ann@lawfirm.example",
        content=raw,
        headers=_auth(key, **{"Content-Type": "message/rfc822"}),
    )
    assert r.status_code == 200, r.text
    got = {x["address"]: x for x in r.json()["recipients"]}
    assert (got["bob@x.example"]["action"], got["bob@x.example"]["disposition"]) == (
        "encrypt",
        "portal",
    )
    assert got["bob@x.example"]["rule"] == "cards"
    assert got["bob@x.example"]["explanation"]["detectors"] == {"credit_card": 1}
    assert "4111" not in r.text

    body = {
        "mail_from": "alice@a.example",
        "recipients": ["ann@lawfirm.example", "carl@x.example"],
        "subject": "Statement",
        "body": "see attached",
        "attachments": [
            {
                "filename": "s.pdf",
                "content_type": "application/pdf",
                "content_base64": base64.b64encode(make_pdf(f"Card {CARD}")).decode(),
            }
        ],
    }
    j = world.client.post("/api/v1/policy/dry-run", json=body, headers=_auth(key))
    assert j.status_code == 200, j.text
    assert [(x["address"], x["rule"]) for x in j.json()["recipients"]] == [
        ("ann@lawfirm.example", "cards"),
        ("carl@x.example", "cards"),
    ]
    plain = {**body, "attachments": [], "subject": "Lunch"}
    p = world.client.post("/api/v1/policy/dry-run", json=plain, headers=_auth(key)).json()
    assert [x["disposition"] for x in p["recipients"]] == ["tls", "clear"]
    keyword = {**plain, "subject": "[secure] Lunch"}
    k = world.client.post("/api/v1/policy/dry-run", json=keyword, headers=_auth(key)).json()
    assert [x["disposition"] for x in k["recipients"]] == ["portal", "portal"]
    assert k["recipients"][1]["explanation"]["trigger"] == "subject keyword [secure]"

    assert (
        world.client.post("/api/v1/policy/dry-run", json={"x": 1}, headers=_auth(key)).status_code
        == 400
    )
    assert world.client.post("/api/v1/policy/dry-run", json=body).status_code == 401


def test_openapi_lists_the_policy_api(world: World) -> None:
    paths = world.client.get("/api/v1/openapi.json").json()["paths"]
    assert {"/api/v1/policy", "/api/v1/policy/dry-run"} <= set(paths)
    assert {"get", "put"} <= set(paths["/api/v1/policy"])
