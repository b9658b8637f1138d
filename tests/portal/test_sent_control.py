"""Senders in control (issue 12, item 3), on both databases: any address of a tenant's
domains signs in at /sent with an emailed code (unless the tenant keeps it to listed users);
on /sent/{id} the sender revokes one recipient or all, changes the expiry and resends a
notification with a new link; an admin revokes from /admin/messages/{id}; the API does the
same. Seen from outside: pages, the outbox, the database rows, the links."""

from __future__ import annotations

import email
import email.policy
import re
import time

from sqlalchemy import select

from conversations.models import MessageEvent
from core.accounts.tenants import create_tenant
from core.models import AuditEvent, OutboxItem, PortalAccess, Tenant
from tests.portal.conftest import World, csrf_of
from tests.portal.test_admin import _add_user
from tests.portal.test_admin import sign_in as admin_sign_in

ALICE = "alice@acme.example"  # the sender; not a listed user
BOB, CAROL = "bob@partner.example", "carol@partner.example"


def ask(world: World, address: str, client=None):  # noqa: ANN001, ANN201
    c = client or world.client
    page = c.get("/sent/login")
    return c.post("/sent/login", data={"csrf": csrf_of(page.text), "email": address})


def sign_in(world: World, address: str = ALICE) -> None:
    r = ask(world, address)
    assert r.status_code == 200 and "Enter your code" in r.text
    r = world.client.post(
        "/sent/verify",
        data={"csrf": csrf_of(r.text), "code": world.latest_code()},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/sent", r.text


async def _accesses(world: World, message_id: str) -> dict[str, PortalAccess]:
    async with world.services.db.session() as s:
        rows = await s.execute(select(PortalAccess).where(PortalAccess.message_id == message_id))
        return {a.recipient: a for a in rows.scalars()}


async def _events(world: World, message_id: str) -> list[tuple[str, str, str]]:
    async with world.services.db.session() as s:
        rows = await s.execute(
            select(MessageEvent)
            .where(MessageEvent.message_id == message_id)
            .order_by(MessageEvent.id)
        )
        return [(e.kind, e.recipient, e.actor) for e in rows.scalars()]


async def _notifications(world: World, message_id: str) -> list[email.message.EmailMessage]:
    async with world.services.db.session() as s:
        items = (
            await s.execute(
                select(OutboxItem)
                .where(OutboxItem.message_id == message_id, OutboxItem.kind == "notification")
                .order_by(OutboxItem.created_at)
            )
        ).scalars()
        out = []
        for item in items:
            data = await world.services.vault.read(s, item.tenant_id, item.object_id)
            out.append(email.message_from_bytes(data, policy=email.policy.default))
        return out


async def _set(world: World, tenant_id: str, **fields: object) -> None:
    async with world.services.db.session() as s:
        tenant = await s.get(Tenant, tenant_id)
        for k, v in fields.items():
            setattr(tenant, k, v)
        await s.commit()


def setup(world: World) -> tuple[str, str]:
    tid = world.tenant("Acme", "acme.example", display_name="Acme Bank")
    sealed = world.seal(tid, recipients=[BOB, CAROL], sender=f"Alice Smith <{ALICE}>")
    return tid, sealed.message_id


def test_unlisted_address_of_the_domain_signs_in(world: World) -> None:
    tid, mid = setup(world)
    sign_in(world)
    listing = world.client.get("/sent")
    assert listing.status_code == 200 and "Quarterly figures" in listing.text
    assert (
        f"{BOB}</span>: sealed to the portal" in listing.text and "not yet opened" in listing.text
    )
    assert world.client.get(f"/sent/{mid}").status_code == 200
    # a sender's session, never an admin one
    assert world.client.get("/admin", follow_redirects=False).status_code == 404

    async def audited() -> list[str]:
        async with world.services.db.session() as s:
            rows = await s.execute(select(AuditEvent.action).where(AuditEvent.actor == ALICE))
            return list(rows.scalars())

    assert {"sent.code.sent", "sent.signin"} <= set(world.run(audited))


def test_listed_only_tenant_refuses_unlisted_addresses_alike(world: World) -> None:
    tid, _mid = setup(world)
    world.run(_set, world, tid, sent_users="listed")
    world.run(_add_user, world.services, tid, "listed@acme.example", "sender")
    refused = ask(world, ALICE)
    assert refused.status_code == 200 and "Enter your code" in refused.text
    assert world.codes() == []
    allowed = ask(world, "listed@acme.example")
    assert allowed.status_code == 200 and len(world.codes()) == 1
    # the same page for both, but for the masked address
    strip = re.compile(r'value="[^"]*"|<strong>[^<]*</strong>')
    assert strip.sub("", refused.text) == strip.sub("", allowed.text)


def test_switching_to_listed_ends_an_unlisted_session_at_once(world: World) -> None:
    tid, mid = setup(world)
    sign_in(world)
    assert world.client.get(f"/sent/{mid}").status_code == 200
    world.run(_set, world, tid, sent_users="listed")
    r = world.client.get(f"/sent/{mid}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/sent/login"


def test_another_tenants_message_is_404(world: World) -> None:
    _tid, _mid = setup(world)
    other = world.tenant("Beta", "beta.example")
    theirs = world.seal(other, recipients=[BOB]).message_id  # also from alice@acme.example
    sign_in(world)
    csrf = csrf_of(world.client.get("/sent").text)
    assert world.client.get(f"/sent/{theirs}").status_code == 404
    assert world.client.get(f"/sent/{theirs}/revoke").status_code == 404
    for action, data in (("revoke", {"recipient": ""}), ("expiry", {"expires": "now"}),
                         ("resend", {"recipient": BOB})):  # fmt: skip
        r = world.client.post(f"/sent/{theirs}/{action}", data={"csrf": csrf, **data})
        assert r.status_code == 404, action
    assert not world.run(_accesses, world, theirs)[BOB].revoked


def test_revoke_bob_leaves_carol_live(world: World) -> None:
    _tid, mid = setup(world)
    assert set(world.run(_accesses, world, mid)) == {BOB, CAROL}
    sign_in(world)
    page = world.client.get(f"/sent/{mid}")
    assert f"Revoke {BOB}'s access now" in page.text
    # without the CSRF token nothing happens
    assert world.client.post(f"/sent/{mid}/revoke", data={"recipient": BOB}).status_code == 403
    r = world.client.post(
        f"/sent/{mid}/revoke",
        data={"csrf": csrf_of(page.text), "recipient": BOB},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == f"/sent/{mid}?done=revoked"
    rows = world.run(_accesses, world, mid)
    assert rows[BOB].revoked and rows[BOB].revoked_by == ALICE and rows[BOB].revoked_at
    assert not rows[CAROL].revoked
    after = world.client.get(r.headers["location"])
    assert "the access was revoked" in after.text
    assert re.search(rf"Revoked by {ALICE} at \d\d:\d\d UTC, \d+ \w+ \d{{4}}\.", after.text)
    assert f"Revoke {CAROL}'s access now" in after.text
    assert f"Revoke {BOB}'s access now" not in after.text
    assert f"{ALICE} revoked {BOB}&#39;s access." in after.text  # the timeline
    assert ("revoked", BOB, ALICE) in world.run(_events, world, mid)


def test_revoke_all_through_the_confirm_page(world: World) -> None:
    _tid, mid = setup(world)
    sign_in(world)
    confirm = world.client.get(f"/sent/{mid}/revoke")
    assert confirm.status_code == 200 and "Revoke everyone's access now" in confirm.text
    assert BOB in confirm.text and CAROL in confirm.text
    r = world.client.post(
        f"/sent/{mid}/revoke", data={"csrf": csrf_of(confirm.text), "recipient": ""},
        follow_redirects=False,
    )  # fmt: skip
    assert r.status_code == 303
    rows = world.run(_accesses, world, mid)
    assert rows[BOB].revoked and rows[CAROL].revoked
    again = world.client.get(f"/sent/{mid}/revoke")
    assert "Nobody's access to revoke" in again.text


def test_expiry_past_ends_at_once_future_moves_it(world: World) -> None:
    _tid, mid = setup(world)
    sign_in(world)
    page = world.client.get(f"/sent/{mid}")
    csrf = csrf_of(page.text)
    bad = world.client.post(f"/sent/{mid}/expiry", data={"csrf": csrf, "expires": "soonish"})
    assert bad.status_code == 400 and "is not a time we understand" in bad.text
    assert "soonish" in bad.text  # what was typed stays in the field
    before = world.run(_accesses, world, mid)[BOB].expires_at
    r = world.client.post(f"/sent/{mid}/expiry", data={"csrf": csrf, "expires": "2020-01-01"},
                          follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    rows = world.run(_accesses, world, mid)
    assert rows[BOB].expires_at <= time.time() and rows[CAROL].expires_at <= time.time()
    shown = world.client.get(f"/sent/{mid}").text
    assert "Access expired 1 January 2020" in shown and "Revoke" not in shown.split("Control")[0]
    r = world.client.post(f"/sent/{mid}/expiry", data={"csrf": csrf, "expires": "30d"},
                          follow_redirects=False)  # fmt: skip
    later = world.run(_accesses, world, mid)[BOB].expires_at
    assert r.status_code == 303 and later > before and abs(later - time.time() - 30 * 86400) < 60
    kinds = [k for k, _r, _a in world.run(_events, world, mid)]
    assert kinds.count("expiry_changed") == 4  # two changes, two recipients


def test_resend_rotates_the_link(world: World) -> None:
    tid = world.tenant("Acme", "acme.example")
    sealed = world.seal(tid, recipients=[BOB, CAROL], sender=f"Alice Smith <{ALICE}>")
    mid, old = sealed.message_id, sealed.tokens[BOB]
    assert world.client.get(f"/m/{old}").status_code == 200
    sign_in(world)
    page = world.client.get(f"/sent/{mid}")
    r = world.client.post(
        f"/sent/{mid}/resend", data={"csrf": csrf_of(page.text), "recipient": BOB},
        follow_redirects=False,
    )  # fmt: skip
    assert r.status_code == 303 and r.headers["location"] == f"/sent/{mid}?done=resent"
    mails = world.run(_notifications, world, mid)
    assert len(mails) == 1 and mails[0]["To"] == BOB
    assert mails[0]["Subject"] == "Secure message from Alice Smith: Quarterly figures"
    text = mails[0].get_body(("plain",)).get_content()
    token = re.search(r"/m/([A-Za-z0-9_-]{20,})", text).group(1)
    assert token != old
    assert world.client.get(f"/m/{old}").status_code == 404  # the old link stops working
    assert world.client.get(f"/m/{token}").status_code == 200
    assert world.client.get(f"/m/{sealed.tokens[CAROL]}").status_code == 200  # carol's stays
    assert ("resent", BOB, ALICE) in world.run(_events, world, mid)
    # a revoked access is not resent
    csrf = csrf_of(world.client.get(f"/sent/{mid}").text)
    world.client.post(f"/sent/{mid}/revoke", data={"csrf": csrf, "recipient": BOB})
    refused = world.client.post(f"/sent/{mid}/resend", data={"csrf": csrf, "recipient": BOB})
    assert refused.status_code == 400 and "was revoked" in refused.text
    assert len(world.run(_notifications, world, mid)) == 1


def test_admin_revokes_any_message_of_the_tenant(world: World) -> None:
    tid, mid = setup(world)
    world.run(_add_user, world.services, tid, "admin@acme.example", "admin")
    admin_sign_in(world, "admin@acme.example")
    page = world.client.get(f"/admin/messages/{mid}")
    assert page.status_code == 200 and f"Revoke {CAROL}'s access now" in page.text
    r = world.client.post(
        f"/admin/messages/{mid}/revoke", data={"csrf": csrf_of(page.text), "recipient": CAROL},
        follow_redirects=False,
    )  # fmt: skip
    assert r.status_code == 303
    rows = world.run(_accesses, world, mid)
    assert rows[CAROL].revoked and rows[CAROL].revoked_by == "admin@acme.example"
    assert not rows[BOB].revoked
    assert "Revoked by admin@acme.example" in world.client.get(r.headers["location"]).text
    csrf = csrf_of(page.text)
    r = world.client.post(f"/admin/messages/{mid}/revoke", data={"csrf": csrf, "recipient": ""})
    assert r.status_code == 200 and world.run(_accesses, world, mid)[BOB].revoked
    other = world.tenant("Beta", "beta.example")
    theirs = world.seal(other, recipients=[BOB]).message_id
    r = world.client.post(f"/admin/messages/{theirs}/revoke", data={"csrf": csrf})
    assert r.status_code == 404 and not world.run(_accesses, world, theirs)[BOB].revoked


async def _tenant_with_key(world: World, name: str, domain: str) -> tuple[str, str]:
    async with world.services.db.session() as s:
        creds = await create_tenant(s, world.services.keyring, name, [domain])
        await s.commit()
    return creds.tenant_id, creds.api_key


def test_api_revoke_expiry_resend_and_errors(world: World) -> None:
    tid, key = world.run(_tenant_with_key, world, "Acme", "acme.example")
    _other, other_key = world.run(_tenant_with_key, world, "Beta", "beta.example")
    sealed = world.seal(tid, recipients=[BOB, CAROL])
    mid = sealed.message_id
    auth = {"Authorization": f"Bearer {key}"}
    base = f"/api/v1/messages/{mid}"

    r = world.client.post(f"{base}/revoke", json={"recipient": BOB}, headers=auth)
    assert r.status_code == 200 and r.json() == {"id": mid, "revoked": [BOB]}
    assert world.client.get(f"/m/{sealed.tokens[BOB]}").status_code != 200
    assert world.client.get(f"/m/{sealed.tokens[CAROL]}").status_code == 200

    r = world.client.post(f"{base}/expiry", json={"expires": "2h"}, headers=auth)
    assert r.status_code == 200 and r.json()["expires"].endswith("Z")
    assert abs(r.json()["expires_at"] - time.time() - 7200) < 60

    r = world.client.post(f"{base}/resend", json={"recipient": CAROL}, headers=auth)
    assert r.status_code == 200 and r.json()["resent"] is True
    assert world.client.get(f"/m/{sealed.tokens[CAROL]}").status_code == 404
    assert len(world.run(_notifications, world, mid)) == 1

    recorded = world.run(_events, world, mid)
    actor = "api-key:" + key[:8]  # a key without a label is named by its prefix
    assert ("revoked", BOB, actor) in recorded
    assert ("resent", CAROL, actor) in recorded
    assert [k for k, _r, _a in recorded].count("expiry_changed") == 2  # revoked stays revoked

    # errors: JSON, never a 500
    bad = [
        (f"{base}/expiry", {"expires": "whenever"}, 422),
        (f"{base}/expiry", {}, 422),
        (f"{base}/expiry", {"expires": 5}, 422),
        (f"{base}/resend", {}, 422),
        (f"{base}/revoke", {"recipient": 7}, 422),
        (f"{base}/revoke", {"recipient": "nobody@partner.example"}, 404),
        (f"{base}/resend", {"recipient": BOB}, 409),  # revoked
        ("/api/v1/messages/q_nosuch/revoke", {"recipient": None}, 404),
    ]
    for path, body, status in bad:
        r = world.client.post(path, json=body, headers=auth)
        assert r.status_code == status and "error" in r.json(), (path, body, r.text)
    r = world.client.post(f"{base}/revoke", content=b"[not json", headers=auth)
    assert r.status_code == 400 and "error" in r.json()
    r = world.client.post(f"{base}/revoke", json={"recipient": None},
                          headers={"Authorization": f"Bearer {other_key}"})  # fmt: skip
    assert r.status_code == 404 and not world.run(_accesses, world, mid)[CAROL].revoked
    assert world.client.post(f"{base}/revoke", json={}).status_code == 401


def test_api_get_shows_access_and_events(world: World) -> None:
    from tests.portal.test_sent import make_sent

    tid, key = world.run(_tenant_with_key, world, "Acme", "acme.example")
    mid = world.run(make_sent, world.services, tid, ALICE, "Figures",
                    [(BOB, "portal", "sent"), (CAROL, "pgp", "sent")])  # fmt: skip
    auth = {"Authorization": f"Bearer {key}"}
    world.client.post(f"/api/v1/messages/{mid}/revoke", json={"recipient": BOB}, headers=auth)
    shown = world.client.get(f"/api/v1/messages/{mid}", headers=auth).json()
    by = {x["address"]: x for x in shown["recipients"]}
    assert (
        by[BOB]["access"]["revoked"] is True
        and by[BOB]["access"]["revoked_by"] == "api-key:" + key[:8]
    )
    assert [e["kind"] for e in by[BOB]["events"]] == ["revoked"]
    assert by[CAROL]["access"] is None and by[CAROL]["events"] == []
    doc = world.client.get("/api/v1/openapi.json").json()
    for action in ("revoke", "expiry", "resend"):
        spec = doc["paths"][f"/api/v1/messages/{{message_id}}/{action}"]["post"]
        assert "requestBody" in spec and "422" in spec["responses"] and "404" in spec["responses"]
