"""/admin on both databases: sign-in by one-time code, no enumeration, CSRF, the
quarantine pages and API, and tenant isolation (tenant B's officer never sees or decides
tenant A's held message)."""

from __future__ import annotations

import json

from sqlalchemy import select

from core.accounts.tenants import get_tenant
from core.accounts.users import add_user
from core.models import AuditEvent, Message, MessageRecipient, OutboxItem
from core.policy.models import PolicyDecision
from core.services import Services
from tests.core.test_quarantine import SECRET, make_held
from tests.portal.conftest import World, csrf_of


async def _add_user(services: Services, tenant_id: str, email: str, role: str) -> None:
    async with services.db.session() as s:
        tenant = await get_tenant(s, tenant_id)
        await add_user(s, tenant, email, role)
        await s.commit()


async def _api_key(services: Services, tenant_id: str) -> str:
    from core.hashing import sha256_hex
    from core.ids import new_token
    from core.models import ApiKey

    key = "smk_" + new_token(32)
    async with services.db.session() as s:
        s.add(ApiKey(key_hash=sha256_hex(key), tenant_id=tenant_id, role="admin", prefix=key[:8]))
        await s.commit()
    return key


async def _decision(services: Services, message_id: str, tenant_id: str) -> None:
    async with services.db.session() as s:
        s.add(
            PolicyDecision(
                message_id=message_id,
                tenant_id=tenant_id,
                rcpt="bob@partner.example",
                action="hold",
                disposition="hold",
                rule="deals",
                explanation=json.dumps(
                    {"rules": [{"rule": "deals", "hit": True}], "detectors": {"keyword": 2}}
                ),
            )
        )
        await s.commit()


def setup(world: World) -> dict[str, str]:
    a = world.tenant("Acme", "acme.example")
    b = world.tenant("Beta", "beta.example")
    world.run(_add_user, world.services, a, "officer@acme.example", "compliance")
    world.run(_add_user, world.services, b, "officer@beta.example", "admin")
    world.run(_add_user, world.services, a, "sender@acme.example", "sender")
    message_id, held_id = world.run(make_held, world.services, a)
    world.run(_decision, world.services, message_id, a)
    return {"a": a, "b": b, "message": message_id, "held": held_id}


def ask_code(client, email: str):  # noqa: ANN001, ANN201
    page = client.get("/admin/login")
    assert page.status_code == 200
    return client.post("/admin/login", data={"csrf": csrf_of(page.text), "email": email})


def sign_in(world: World, email: str, client=None):  # noqa: ANN001, ANN201
    c = client or world.client
    r = ask_code(c, email)
    assert r.status_code == 200, r.text
    r = c.post(
        "/admin/verify",
        data={"csrf": csrf_of(r.text), "code": world.latest_code()},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/admin", r.text
    return c


def test_sign_in_and_quarantine_pages(world: World) -> None:
    ids = setup(world)
    assert world.client.get("/admin/quarantine", follow_redirects=False).status_code == 303
    sign_in(world, "Officer@Acme.example")
    cookie = world.client.cookies.get("__Host-sealmail_session")
    assert cookie
    overview = world.client.get("/admin")
    assert overview.status_code == 200 and "1</strong> message" in overview.text
    assert overview.headers["content-security-policy"].endswith("frame-ancestors 'none'")
    listing = world.client.get("/admin/quarantine")
    assert listing.status_code == 200
    assert "alice@acme.example" in listing.text and "deals" in listing.text
    assert SECRET not in listing.text and "Project X" not in listing.text
    detail = world.client.get(f"/admin/quarantine/{ids['held']}")
    assert detail.status_code == 200
    said = "Held because rule &#39;deals&#39; found 2 matches of the detector &#39;keyword&#39;."
    assert SECRET in detail.text and "Project X" in detail.text and said in detail.text
    why = world.client.get(f"/admin/messages/{ids['message']}")
    assert why.status_code == 200 and said in why.text


def test_not_a_user_gets_the_same_page_and_no_mail(world: World) -> None:
    setup(world)
    for email in ("nobody@acme.example", "sender@acme.example"):
        r = ask_code(world.client, email)
        assert r.status_code == 200 and "Enter your code" in r.text
        assert world.codes() == []
        bad = world.client.post(
            "/admin/verify", data={"csrf": csrf_of(r.text), "code": "000000"},
            follow_redirects=False,
        )  # fmt: skip
        assert bad.status_code == 400
    real = ask_code(world.client, "officer@acme.example")
    assert len(world.codes()) == 1
    # the page of a real user does not differ except for the masked address
    assert real.text.replace("o***r@acme", "X").count("sent it") == 1


def test_wrong_codes_are_limited_and_single_use(world: World) -> None:
    setup(world)
    r = ask_code(world.client, "officer@acme.example")
    csrf = csrf_of(r.text)
    code = world.latest_code()
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        bad = world.client.post("/admin/verify", data={"csrf": csrf, "code": wrong})
        assert bad.status_code == 400
    late = world.client.post("/admin/verify", data={"csrf": csrf, "code": code})
    assert late.status_code == 429  # five failures: this code is dead
    # a fresh code works once
    other = world.new_client()
    sign_in(world, "officer@acme.example", other)
    again = other.post("/admin/verify", data={"csrf": csrf, "code": world.latest_code()},
                       follow_redirects=False)  # fmt: skip
    assert again.status_code in (303, 403) and again.headers.get("location") != "/admin"


def test_pending_sign_in_is_no_session(world: World) -> None:
    """The pending cookie copied into the session cookie opens nothing."""
    setup(world)
    ask_code(world.client, "officer@acme.example")
    pending = world.client.cookies.get("__Host-sealmail_admin_pending")
    world.client.cookies.set("__Host-sealmail_session", pending, domain="testserver")
    assert world.client.get("/admin", follow_redirects=False).status_code == 303
    assert world.client.get("/inbox").status_code == 401


def test_csrf_is_required(world: World) -> None:
    ids = setup(world)
    page = world.client.get("/admin/login")
    assert world.client.post("/admin/login", data={"email": "x@acme.example"}).status_code == 403
    assert (
        world.client.post(
            "/admin/login",
            data={"csrf": csrf_of(page.text), "email": "officer@acme.example"},
            headers={"Sec-Fetch-Site": "cross-site"},
        ).status_code
        == 403
    )
    sign_in(world, "officer@acme.example")
    url = f"/admin/quarantine/{ids['held']}/release"
    assert world.client.post(url, data={}).status_code == 403
    assert world.client.post(url, data={"csrf": "forged"}).status_code == 403
    assert world.client.post(url, data={"csrf": "x"}, headers={"Origin": "https://evil.example"}
                             ).status_code == 403  # fmt: skip
    assert world.run(_message_state, world.services, ids["message"]) == "processed"


async def _message_state(services: Services, message_id: str) -> str:
    async with services.db.session() as s:
        return (await s.get(Message, message_id)).state


async def _audit(services: Services, action: str) -> list[AuditEvent]:
    async with services.db.session() as s:
        rows = await s.execute(select(AuditEvent).where(AuditEvent.action == action))
        return list(rows.scalars())


async def _rcpt(services: Services, message_id: str) -> MessageRecipient:
    async with services.db.session() as s:
        rows = await s.execute(
            select(MessageRecipient).where(
                MessageRecipient.message_id == message_id,
                MessageRecipient.rcpt == "bob@partner.example",
            )
        )
        return rows.scalar_one()


def test_release_from_the_page(world: World) -> None:
    ids = setup(world)
    sign_in(world, "officer@acme.example")
    detail = world.client.get(f"/admin/quarantine/{ids['held']}")
    r = world.client.post(
        f"/admin/quarantine/{ids['held']}/release",
        data={"csrf": csrf_of(detail.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    row = world.run(_rcpt, world.services, ids["message"])
    assert (row.override, row.state) == ("released", "pending")
    assert world.run(_message_state, world.services, ids["message"]) == "received"
    events = world.run(_audit, world.services, "quarantine.release")
    assert [e.actor for e in events] == ["officer@acme.example"]
    assert world.run(_audit, world.services, "quarantine.view")
    assert world.run(_audit, world.services, "admin.signin")


def test_reject_from_the_page_notifies_sender_once(world: World) -> None:
    ids = setup(world)
    sign_in(world, "officer@acme.example")
    detail = world.client.get(f"/admin/quarantine/{ids['held']}")
    url = f"/admin/quarantine/{ids['held']}/reject"
    data = {"csrf": csrf_of(detail.text), "note": "not allowed"}
    assert world.client.post(url, data=data, follow_redirects=False).status_code == 303
    assert world.client.post(url, data=data, follow_redirects=False).status_code == 303
    notices = world.run(_notices, world.services, ids["a"])
    assert len(notices) == 1
    assert "deals" in notices[0] and "not allowed" in notices[0] and SECRET not in notices[0]
    assert "Acme" in notices[0]
    row = world.run(_rcpt, world.services, ids["message"])
    assert (row.state, row.disposition) == ("done", "reject")


async def _notices(services: Services, tenant_id: str) -> list[str]:
    async with services.db.session() as s:
        items = (await s.execute(select(OutboxItem).where(OutboxItem.kind == "dsn"))).scalars()
        return [
            (await services.vault.read(s, tenant_id, i.object_id)).decode() for i in list(items)
        ]


def test_other_tenants_officer_is_denied(world: World) -> None:
    ids = setup(world)
    beta = world.new_client()
    sign_in(world, "officer@beta.example", beta)
    assert beta.get("/admin/quarantine").status_code == 200
    assert "alice@acme.example" not in beta.get("/admin/quarantine").text
    unknown = beta.get("/admin/quarantine/h_doesnotexist")
    foreign = beta.get(f"/admin/quarantine/{ids['held']}")
    assert foreign.status_code == unknown.status_code == 404
    assert foreign.text == unknown.text
    assert beta.get(f"/admin/messages/{ids['message']}").status_code == 404
    page = beta.get("/admin")
    for action in ("release", "reject"):
        r = beta.post(
            f"/admin/quarantine/{ids['held']}/{action}", data={"csrf": csrf_of(page.text)}
        )
        assert r.status_code == 404
    row = world.run(_rcpt, world.services, ids["message"])
    assert (row.override, row.state) == ("", "done")
    assert world.run(_notices, world.services, ids["a"]) == []


def test_api_quarantine_and_isolation(world: World) -> None:
    ids = setup(world)
    key_a = world.run(_api_key, world.services, ids["a"])
    key_b = world.run(_api_key, world.services, ids["b"])
    c = world.client
    assert c.get("/api/v1/quarantine").status_code == 401
    listed = c.get("/api/v1/quarantine", headers={"Authorization": f"Bearer {key_a}"}).json()
    assert [i["id"] for i in listed["items"]] == [ids["held"]]
    assert listed["items"][0]["rule"] == "deals" and "text" not in listed["items"][0]
    hb = {"Authorization": f"Bearer {key_b}"}
    assert c.get("/api/v1/quarantine", headers=hb).json() == {"items": []}
    assert c.post(f"/api/v1/quarantine/{ids['held']}/release", headers=hb).status_code == 404
    assert c.post(f"/api/v1/quarantine/{ids['held']}/reject", headers=hb).status_code == 404
    ha = {"Authorization": f"Bearer {key_a}"}
    r = c.post(f"/api/v1/quarantine/{ids['held']}/reject", headers=ha, json={"note": "no"})
    assert r.status_code == 200 and r.json()["state"] == "rejected"
    again = c.post(f"/api/v1/quarantine/{ids['held']}/release", headers=ha)
    assert again.status_code == 409
    assert len(world.run(_notices, world.services, ids["a"])) == 1


async def _waiting_message(services: Services, tenant_id: str, error: str) -> str:
    from core.ids import queue_id

    async with services.db.session() as s:
        m = Message(
            id=queue_id(), tenant_id=tenant_id, mail_from="alice@acme.example",
            raw_object_id="o_none", state="received", attempts=3,
            last_error=error,
        )  # fmt: skip
        s.add(m)
        await s.commit()
        return m.id


def test_overview_shows_why_mail_is_waiting(world: World) -> None:
    ids = setup(world)
    why = "EncryptionFailed: OpenPGP encryption to bob@recipient.test failed: no usable key"
    waiting = world.run(_waiting_message, world.services, ids["a"], why)
    world.run(_waiting_message, world.services, ids["b"], "EncryptionFailed: beta's own")
    sign_in(world, "officer@acme.example")
    page = world.client.get("/admin")
    assert page.status_code == 200
    assert waiting in page.text and "no usable key" in page.text and "retrying" in page.text
    assert "beta&#39;s own" not in page.text and "beta's own" not in page.text


def test_admin_session_is_not_a_recipient_session(world: World) -> None:
    setup(world)
    sign_in(world, "officer@acme.example")
    assert world.client.get("/inbox").status_code == 401


def test_sign_in_addresses_use_the_one_validator(world: World) -> None:
    """The admin/sender sign-in form refuses what core.addresses refuses with its own page
    (400, "Enter your email address."), and sends nothing."""
    setup(world)
    for bad in ("officer@acme", "officer@@acme.example", "officer@acme.example\x07", ""):
        r = ask_code(world.client, bad)
        assert r.status_code == 400 and "Enter your email address." in r.text, bad
    assert world.codes() == []
