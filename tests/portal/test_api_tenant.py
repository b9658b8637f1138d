"""The tenant API added for issue 14, seen from outside: users, API keys with scopes and last
use, brands, the audit log, the message list and compose; each key's scope decides what it
may do, a sender key sees and sends only as its owner, another tenant sees nothing, and every
change is in the audit log with the key as actor."""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy import select

from core.accounts.tenants import create_tenant
from core.models import Message
from tests.portal.conftest import World


async def _tenant_with_key(world: World, name: str, domain: str) -> tuple[str, str]:
    async with world.services.db.session() as s:
        creds = await create_tenant(s, world.services.keyring, name, [domain])
        await s.commit()
    return creds.tenant_id, creds.api_key


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _key(world: World, admin: dict[str, str], scope: str, **extra: Any) -> str:
    r = world.client.post(
        "/api/v1/api-keys", json={"label": f"{scope} key", "scope": scope, **extra}, headers=admin
    )
    assert r.status_code == 201, r.text
    assert r.json()["scope"] == scope and r.json()["key"].startswith("smk_")
    return str(r.json()["key"])


def test_users_keys_and_audit_by_scope(world: World) -> None:
    tid, admin_key = world.run(_tenant_with_key, world, "Acme", "acme.example")
    _other, other_key = world.run(_tenant_with_key, world, "Other", "other.example")
    admin, c = _auth(admin_key), world.client

    r = c.post(
        "/api/v1/users", json={"email": "Alice@Acme.example", "role": "admin"}, headers=admin
    )
    assert r.status_code == 201 and r.json()["email"] == "alice@acme.example"
    alice = r.json()["id"]
    assert c.post("/api/v1/users", json={"email": "alice@acme.example", "role": "admin"},
                  headers=admin).status_code == 409  # fmt: skip
    assert c.post("/api/v1/users", json={"email": "x", "role": "admin"}, headers=admin).json()[
        "error"
    ]
    r = c.post("/api/v1/users", json={"email": "sam@acme.example", "role": "sender"}, headers=admin)
    sam = r.json()["id"]
    assert [u["email"] for u in c.get("/api/v1/users", headers=admin).json()["users"]] == [
        "alice@acme.example",
        "sam@acme.example",
    ]
    # the last admin can be neither demoted nor removed
    r = c.patch(f"/api/v1/users/{alice}", json={"role": "sender"}, headers=admin)
    assert r.status_code == 409 and "last admin" in r.json()["error"]
    assert c.delete(f"/api/v1/users/{alice}", headers=_auth(other_key)).status_code == 404
    assert (
        c.patch(f"/api/v1/users/{sam}", json={"role": "compliance"}, headers=admin).json()["role"]
        == "compliance"
    )

    # keys: compliance reads the list and the audit log, changes nothing; sender neither
    compliance = _auth(_key(world, admin, "compliance"))
    sender_key = _key(world, admin, "sender", owner="sam@acme.example")
    sender = _auth(sender_key)
    assert (
        c.post(
            "/api/v1/api-keys", json={"label": "s", "scope": "sender"}, headers=admin
        ).status_code
        == 422
    )  # fmt: skip  (a sender key needs an owner)
    listed = c.get("/api/v1/api-keys", headers=compliance).json()["api_keys"]
    assert {k["scope"] for k in listed} == {"admin", "compliance", "sender"}
    assert all("key" not in k for k in listed)
    assert c.post("/api/v1/users", json={"email": "e@acme.example", "role": "admin"},
                  headers=compliance).status_code == 403  # fmt: skip
    for path in ("/api/v1/users", "/api/v1/audit", "/api/v1/api-keys", "/api/v1/brands"):
        r = c.get(path, headers=sender)
        assert r.status_code == 403 and r.headers["content-type"] == "application/json", path
    # last use is recorded by authentication
    used = [k for k in c.get("/api/v1/api-keys", headers=admin).json()["api_keys"]
            if k["label"] == "sender key"]  # fmt: skip
    assert used[0]["last_used_at"] is not None and used[0]["created_by"] == "sam@acme.example"

    events = c.get("/api/v1/audit?action=user.add", headers=compliance).json()
    assert [e["detail"]["email"] for e in events["events"]] == [
        "sam@acme.example",
        "alice@acme.example",
    ]
    assert {e["actor"] for e in events["events"]} == {"api-key:" + admin_key[:8]}
    page = c.get("/api/v1/audit?limit=2", headers=admin).json()
    assert len(page["events"]) == 2 and page["next_before"]
    rest = c.get(f"/api/v1/audit?limit=200&before={page['next_before']}", headers=admin).json()
    assert {e["id"] for e in rest["events"]}.isdisjoint({e["id"] for e in page["events"]})
    theirs = c.get("/api/v1/audit", headers=_auth(other_key)).json()["events"]
    assert all(e["subject_id"] not in (alice, sam) for e in theirs)
    assert c.get("/api/v1/audit?limit=0", headers=admin).status_code == 422

    # revoking a key refuses it at once
    sender_id = used[0]["id"]
    assert c.delete(f"/api/v1/api-keys/{sender_id}", headers=_auth(other_key)).status_code == 404
    r = c.delete(f"/api/v1/api-keys/{sender_id}", headers=admin)
    assert r.status_code == 200 and r.json()["revoked_at"]
    assert c.get("/api/v1/messages", headers=sender).status_code == 401
    assert tid


def test_brands(world: World) -> None:
    _tid, key = world.run(_tenant_with_key, world, "Brandy", "brandy.example")
    admin, c = _auth(key), world.client
    compliance = _auth(_key(world, admin, "compliance"))
    brands = c.get("/api/v1/brands", headers=admin).json()["brands"]
    # the default brand is made from the tenant's settings the first time it is asked for
    assert [b["name"] for b in brands] == ["default"], brands
    bid = brands[0]["id"]
    assert c.get(f"/api/v1/brands/{bid}", headers=compliance).status_code == 403
    r = c.patch(f"/api/v1/brands/{bid}", json={"footer_text": "Brandy Ltd", "color": "#123456"},
                headers=admin)  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["footer_text"] == "Brandy Ltd" and r.json()["color"] == "#123456"
    r = c.patch(f"/api/v1/brands/{bid}", json={"color": "#ffff00"}, headers=admin)
    assert r.status_code == 422 and "contrast" in r.json()["error"]
    assert c.patch(f"/api/v1/brands/{bid}", json={"logo": "x"}, headers=admin).status_code == 422
    assert c.get(f"/api/v1/brands/{bid}", headers=admin).json()["color"] == "#123456"
    audit = c.get("/api/v1/audit?action=brand.update", headers=admin).json()["events"]
    assert (
        audit[0]["actor"] == "api-key:" + key[:8] and "footer_text" in audit[0]["detail"]["changed"]
    )


async def _messages(world: World, tid: str) -> list[Message]:
    async with world.services.db.session() as s:
        return list((await s.execute(select(Message).where(Message.tenant_id == tid))).scalars())


def test_messages_list_and_compose(world: World) -> None:
    tid, key = world.run(_tenant_with_key, world, "Acme", "acme.example")
    _o, other_key = world.run(_tenant_with_key, world, "Other", "other.example")
    admin, c = _auth(key), world.client
    c.post("/api/v1/users", json={"email": "sam@acme.example", "role": "sender"}, headers=admin)
    sender = _auth(_key(world, admin, "sender", owner="sam@acme.example"))
    compliance = _auth(_key(world, admin, "compliance"))
    alices = world.seal(tid, recipients=["bob@recipient.test"])  # from alice@acme.example

    r = c.post(
        "/api/v1/messages",
        headers=sender,
        json={
            "to": ["bob@recipient.test"],
            "bcc": "carol@recipient.test",
            "subject": "Contract",
            "text": "Please sign.",
            "attachments": [{"name": "c.txt", "content_type": "text/plain",
                             "content_base64": base64.b64encode(b"terms").decode()}],
            "expires": "7d",
            "receipt": True,
        },
    )  # fmt: skip
    assert r.status_code == 202, r.text
    sams = r.json()["id"]
    stored = {m.id: m for m in world.run(_messages, world, tid)}
    assert stored[sams].mail_from == "sam@acme.example" and stored[sams].origin == "compose"

    # the sender key sees its owner's messages only
    listed = c.get("/api/v1/messages", headers=sender).json()
    assert [m["id"] for m in listed["messages"]] == [sams] and listed["next_before"] is None
    assert c.get(f"/api/v1/messages/{alices.message_id}", headers=sender).status_code == 404
    assert c.get(f"/api/v1/messages/{sams}", headers=sender).status_code == 200
    every = c.get("/api/v1/messages?limit=1", headers=compliance).json()
    assert len(every["messages"]) == 1 and every["next_before"]
    more = c.get(f"/api/v1/messages?limit=1&before={every['next_before']}", headers=admin).json()
    assert {every["messages"][0]["id"], more["messages"][0]["id"]} == {sams, alices.message_id}
    only = c.get("/api/v1/messages?sender=alice@acme.example", headers=admin).json()["messages"]
    assert [m["id"] for m in only] == [alices.message_id]
    assert c.get("/api/v1/messages", headers=_auth(other_key)).json()["messages"] == []

    # who may send as whom
    note = {"to": "bob@recipient.test", "text": "hi"}
    r = c.post("/api/v1/messages", json={**note, "from": "alice@acme.example"}, headers=sender)
    assert r.status_code == 403
    assert c.post("/api/v1/messages", json=note, headers=compliance).status_code == 403
    r = c.post("/api/v1/messages", json={**note, "from": "x@elsewhere.example"}, headers=admin)
    assert r.status_code == 422 and "domains" in r.json()["error"]
    r = c.post("/api/v1/messages", json={**note, "from": "alice@acme.example"}, headers=admin)
    assert r.status_code == 202
    r = c.post("/api/v1/messages", json={"from": "alice@acme.example", "to": "nobody"},
               headers=admin)  # fmt: skip
    assert r.status_code == 422 and "to:" in r.json()["error"]
    r = c.post("/api/v1/messages", content=b"[1]", headers=admin)
    assert r.status_code == 400 and r.headers["content-type"] == "application/json"
    big = b'{"text": "' + b"x" * (world.services.settings.smtp_max_message_size * 2) + b'"}'
    assert c.post("/api/v1/messages", content=big, headers=admin).status_code == 413
    # within the size as raw bytes, over it as the mail that carries them (base64)
    raw = b"x" * int(world.services.settings.smtp_max_message_size * 0.9)
    attached = {"name": "big.bin", "content_base64": base64.b64encode(raw).decode()}
    r = c.post("/api/v1/messages", headers=admin,
               json={**note, "from": "alice@acme.example", "attachments": [attached]})  # fmt: skip
    assert r.status_code == 413 and r.json()["error"]
    composed = c.get("/api/v1/audit?action=sent.composed", headers=admin).json()["events"]
    assert len(composed) == 2


def test_a_sender_key_controls_its_owners_messages_only(world: World) -> None:
    tid, key = world.run(_tenant_with_key, world, "Acme", "acme.example")
    admin, c = _auth(key), world.client
    for email in ("alice@acme.example", "sam@acme.example"):
        c.post("/api/v1/users", json={"email": email, "role": "sender"}, headers=admin)
    alice = _auth(_key(world, admin, "sender", owner="alice@acme.example"))
    sam = _auth(_key(world, admin, "sender", owner="sam@acme.example"))
    sealed = world.seal(tid, recipients=["bob@recipient.test"])  # from alice@acme.example
    base = f"/api/v1/messages/{sealed.message_id}"
    r = c.post(f"{base}/revoke", json={"recipient": None}, headers=sam)
    assert r.status_code == 404 and r.json() == {"error": "no such message"}
    assert c.post(f"{base}/expiry", json={"expires": "1d"}, headers=sam).status_code == 404
    r = c.post(f"{base}/revoke", json={"recipient": None}, headers=alice)
    assert r.status_code == 200 and r.json()["revoked"] == ["bob@recipient.test"]
    events = c.get("/api/v1/audit?action=message.revoked", headers=admin).json()["events"]
    assert [e["actor"] for e in events] == ["api-key:sender key"]
