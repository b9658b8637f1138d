"""Receipts in the portal and the API (issue 16), on both databases: the sender downloads a
message's signed receipt from /sent/{id}, a program from /api/v1/messages/{id}/receipt; both
verify with the keys /.well-known/sealmail/receipt-keys publishes and carry the revoke the
sender made; another tenant's message is 404 on both doors; the page links it."""

from __future__ import annotations

import json

from core.evidence.receipt import load_public_keys, verify
from tests.portal.conftest import World, csrf_of
from tests.portal.test_sent_control import ALICE, BOB, CAROL, _tenant_with_key, setup, sign_in


def _keys(world: World) -> dict[str, str]:
    r = world.client.get("/.well-known/sealmail/receipt-keys")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    doc = r.json()
    assert doc["type"] == "sealmail-receipt-keys"
    assert all(set(k) >= {"tenant_id", "key_id", "public_key"} for k in doc["keys"])
    assert not any("name" in k for k in doc["keys"])  # ids and keys only
    return load_public_keys(r.content)


def test_sender_downloads_a_receipt_that_verifies(world: World) -> None:
    _tid, mid = setup(world)
    sign_in(world)
    page = world.client.get(f"/sent/{mid}")
    assert f'href="/sent/{mid}/receipt.json"' in page.text
    r = world.client.post(
        f"/sent/{mid}/revoke", data={"csrf": csrf_of(page.text), "recipient": BOB}
    )
    assert r.status_code in (200, 303)
    r = world.client.get(f"/sent/{mid}/receipt.json")
    assert r.status_code == 200
    assert r.headers["content-disposition"] == f'attachment; filename="receipt-{mid}.json"'
    assert verify(r.content, _keys(world)) == []
    doc = r.json()["receipt"]
    assert doc["message_id"] == mid and doc["envelope_from"] == ALICE
    events = {x["address"]: [e["kind"] for e in x["events"]] for x in doc["recipients"]}
    assert "revoked" in events[BOB] and "revoked" not in events.get(CAROL, [])
    pdf = world.client.get(f"/sent/{mid}/receipt.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-") and verify(pdf.content, _keys(world)) == []
    assert f'href="/sent/{mid}/receipt.pdf"' in page.text
    changed = json.loads(r.content)
    changed["receipt"]["recipients"][0]["events"] = []
    assert verify(json.dumps(changed).encode(), _keys(world)) == [
        "the signature does not match: the receipt was changed after it was signed"
    ]


def test_api_receipt_and_other_tenants(world: World) -> None:
    tid, key = world.run(_tenant_with_key, world, "Acme", "acme.example")
    _other, other_key = world.run(_tenant_with_key, world, "Beta", "beta.example")
    mid = world.seal(tid, recipients=[BOB]).message_id
    r = world.client.get(
        f"/api/v1/messages/{mid}/receipt", headers={"Authorization": f"Bearer {key}"}
    )
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    assert verify(r.content, _keys(world)) == []
    r = world.client.get(
        f"/api/v1/messages/{mid}/receipt", headers={"Authorization": f"Bearer {other_key}"}
    )
    assert r.status_code == 404
    assert world.client.get(f"/api/v1/messages/{mid}/receipt").status_code == 401
    sign_in(world)  # alice of acme.example: not the sender of a Beta message
    theirs = world.seal(_other, recipients=[BOB]).message_id
    assert world.client.get(f"/sent/{theirs}/receipt.json").status_code == 404


def test_an_expiry_is_recorded_once(world: World) -> None:
    from sqlalchemy import update

    from core.evidence.log import record_expiries
    from core.models import PortalAccess

    _tid, mid = setup(world)

    async def expire_bob() -> None:
        async with world.services.db.session() as s:
            await s.execute(
                update(PortalAccess)
                .where(PortalAccess.message_id == mid, PortalAccess.recipient == BOB)
                .values(expires_at=1.0)
            )
            await s.commit()

    world.run(expire_bob)
    assert world.run(record_expiries, world.services) == 1
    assert world.run(record_expiries, world.services) == 0  # once
    sign_in(world)
    doc = world.client.get(f"/sent/{mid}/receipt.json").json()["receipt"]
    (bob,) = [r for r in doc["recipients"] if r["address"] == BOB]
    assert [e["kind"] for e in bob["events"]] == ["expired"]
    assert bob["events"][0]["at"] == 1.0
