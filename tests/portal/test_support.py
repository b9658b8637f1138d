"""``/pin`` and ``/support`` over HTTP (TestClient), on SQLite and PostgreSQL: the contact's
code-then-reset flow, the desk's sign-in, PIN check, lockout mail, permission table, letter,
and what one tenant's contact or one partner's desk cannot reach."""

from __future__ import annotations

import email
import email.policy
import io
import re
from email.message import EmailMessage

import pypdf
from sqlalchemy import select

from core.models import OutboxItem, OutboxRecipient
from core.services import Services
from support import agents, pins
from tests.portal.conftest import Browser, World, csrf_of
from tests.support.test_pins import KEY, give_pin, make_account

ANN = "ann@acme.test"
BOB = "bob@beta.test"


async def mails_to(services: Services, rcpt: str) -> list[tuple[str, EmailMessage]]:
    """(outbox kind, message) of every mail queued for ``rcpt``, oldest first."""
    async with services.db.session() as s:
        rows = (
            await s.execute(
                select(OutboxItem)
                .join(OutboxRecipient, OutboxRecipient.outbox_id == OutboxItem.id)
                .where(OutboxRecipient.rcpt == rcpt)
                .order_by(OutboxItem.created_at, OutboxItem.id)
            )
        ).scalars()
        out = []
        for item in rows:
            assert item.tenant_id is not None
            data = await services.vault.read(s, item.tenant_id, item.object_id)
            msg = email.message_from_bytes(data, policy=email.policy.default)
            assert isinstance(msg, EmailMessage)
            out.append((item.kind, msg))
    return out


def text_of(msg: EmailMessage) -> str:
    body = msg.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


async def add_agent(services: Services, address: str, partner: str | None = None) -> str:
    from core.accounts.partners import find_partner

    async with services.db.session() as s:
        p = await find_partner(s, partner) if partner else None
        _agent, key = await agents.add_agent(s, address, p)
        await s.commit()
    return key


async def pin_ok(services: Services, address: str, pin: str) -> str:
    async with services.db.session() as s:
        r = await pins.check_pin(s, KEY, address, pin, agent="test")
        await s.commit()
    return r.result.value


def contact_signs_in(w: World, c: Browser, address: str) -> None:
    page = c.get("/pin")
    assert page.status_code == 200 and 'action="/pin/code"' in page.text
    r = c.post("/pin/code", data={"csrf": csrf_of(page.text), "email": address})
    assert r.status_code == 200, r.text
    kind, mail = w.run(mails_to, w.services, address)[-1]
    assert kind == "code"
    code = re.search(r"\b(\d{6})\b", text_of(mail))
    assert code, text_of(mail)
    r = c.post(
        "/pin/verify",
        data={"csrf": csrf_of(r.text), "code": code.group(1)},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/pin"


def test_contact_resets_pin_over_http(world: World) -> None:
    w = world
    _, cid = w.run(make_account, w.services, "Acme", "acme.test", ANN)
    old = w.run(give_pin, w.services, cid)
    c = w.new_client()
    contact_signs_in(w, c, ANN)
    page = c.get("/pin")
    assert "Acme Ltd" in page.text and old not in page.text
    r = c.post("/pin/reset", data={"csrf": csrf_of(page.text), "contact": cid, "mode": "new"})
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    m = re.search(r'id="pin"[^>]*>(\d{6})<', r.text)
    assert m, r.text
    new = m.group(1)
    assert w.run(pin_ok, w.services, ANN, new) == "match"
    if new != old:
        assert w.run(pin_ok, w.services, ANN, old) == "no_match"
    kinds = [(k, msg["Subject"]) for k, msg in w.run(mails_to, w.services, ANN)]
    assert kinds[-1] == ("notification", "Your support PIN was changed")
    assert new not in text_of(w.run(mails_to, w.services, ANN)[-1][1])
    # a chosen PIN, typed twice
    page = c.get("/pin")
    form = {"csrf": csrf_of(page.text), "contact": cid, "mode": "choose"}
    r = c.post("/pin/reset", data={**form, "pin": "407193", "pin2": "407139"})
    assert r.status_code == 400 and "differ" in r.text
    r = c.post("/pin/reset", data={**form, "pin": "111111", "pin2": "111111"})
    assert r.status_code == 400 and "too easy" in r.text
    r = c.post("/pin/reset", data={**form, "pin": "407193", "pin2": "407193"})
    assert r.status_code == 200 and "407193" not in r.text
    assert w.run(pin_ok, w.services, ANN, "407193") == "match"


def test_unknown_address_gets_the_same_page_and_no_mail(world: World) -> None:
    w = world
    w.run(make_account, w.services, "Acme", "acme.test", ANN)
    c = w.new_client()
    page = c.get("/pin")
    r = c.post("/pin/code", data={"csrf": csrf_of(page.text), "email": "eve@acme.test"})
    known = w.new_client()
    page2 = known.get("/pin")
    r2 = known.post("/pin/code", data={"csrf": csrf_of(page2.text), "email": ANN})
    strip = re.compile(r'value="[^"]*"|<strong>[^<]*</strong>')
    assert r.status_code == r2.status_code == 200
    assert strip.sub("", r.text) == strip.sub("", r2.text)
    assert w.run(mails_to, w.services, "eve@acme.test") == []
    for guess in ("000000", "123456"):
        bad = c.post("/pin/verify", data={"csrf": csrf_of(r.text), "code": guess})
        assert bad.status_code == 400
    assert c.get("/pin").text.count('action="/pin/code"') == 1  # still not signed in
    # no CSRF token: refused
    assert c.post("/pin/code", data={"email": ANN}).status_code == 403


def test_a_contact_cannot_reset_another_tenants_contact(world: World) -> None:
    w = world
    w.run(make_account, w.services, "Acme", "acme.test", ANN)
    _, bob_id = w.run(make_account, w.services, "Beta", "beta.test", BOB)
    bob_pin = w.run(give_pin, w.services, bob_id)
    c = w.new_client()
    contact_signs_in(w, c, ANN)
    page = c.get("/pin")
    assert "Beta" not in page.text
    r = c.post("/pin/reset", data={"csrf": csrf_of(page.text), "contact": bob_id, "mode": "new"})
    assert r.status_code == 404
    assert w.run(pin_ok, w.services, BOB, bob_pin) == "match"


def desk_signs_in(w: World, c: Browser, address: str, key: str) -> str:
    r = c.get("/support", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/support/login"
    page = c.get("/support/login")
    bad = c.post("/support/login", data={"csrf": csrf_of(page.text), "email": address, "key": "x"})
    assert bad.status_code == 400
    r = c.post(
        "/support/login",
        data={"csrf": csrf_of(bad.text), "email": address, "key": key},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/support"
    home = c.get("/support")
    assert home.status_code == 200 and "Look up a caller" in home.text
    return csrf_of(home.text)


def allowed_of(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-action="([a-z_]+)" data-allowed="(yes|no)"', html))


def test_desk_checks_pins_locks_and_mails_once(world: World) -> None:
    w = world
    _, cid = w.run(make_account, w.services, "Acme", "acme.test", ANN)
    pin = w.run(give_pin, w.services, cid)
    key = w.run(add_agent, w.services, "desk@operator.test")
    c = w.new_client()
    csrf = desk_signs_in(w, c, "desk@operator.test", key)
    r = c.post("/support/lookup", data={"csrf": csrf, "email": ANN})
    assert r.status_code == 200 and "Acme Ltd" in r.text and 'action="/support/verify"' in r.text
    r = c.post("/support/verify", data={"csrf": csrf, "email": ANN, "pin": pin})
    assert 'data-result="match"' in r.text and 'id="standing">good<' in r.text
    allowed = allowed_of(r.text)
    assert allowed == {
        "public_information": "yes",
        "invoices_pricing": "yes",
        "account_changes": "yes",
        "open_ticket": "yes",
        "new_services": "yes",
        "add_contact": "no",
        "delete_service": "no",
    }
    wrong = "000000" if pin != "000000" else "000001"
    for n in range(5):
        r = c.post("/support/verify", data={"csrf": csrf, "email": ANN, "pin": wrong})
        assert 'data-result="no_match"' in r.text
        if n < 4:
            assert f'id="tries-left">{4 - n}<' in r.text
    assert "now locked" in r.text
    r = c.post("/support/verify", data={"csrf": csrf, "email": ANN, "pin": pin})
    assert 'data-result="locked"' in r.text
    assert allowed_of(r.text)["invoices_pricing"] == "no"
    locked = [m for k, m in w.run(mails_to, w.services, ANN) if "locked" in m["Subject"]]
    assert len(locked) == 1 and "/pin" in text_of(locked[0])
    assert pin not in text_of(locked[0])
    # wrong usage and CSRF
    assert c.post("/support/verify", data={"email": ANN, "pin": pin}).status_code == 403


def test_suspended_account_pin_matches_but_only_public_allowed(world: World) -> None:
    w = world
    _, cid = w.run(make_account, w.services, "Acme", "acme.test", ANN, standing="suspended")
    pin = w.run(give_pin, w.services, cid)
    key = w.run(add_agent, w.services, "desk@operator.test")
    c = w.new_client()
    csrf = desk_signs_in(w, c, "desk@operator.test", key)
    r = c.post("/support/verify", data={"csrf": csrf, "email": ANN, "pin": pin})
    assert 'data-result="match"' in r.text and 'id="standing">suspended<' in r.text
    assert {k for k, v in allowed_of(r.text).items() if v == "yes"} == {"public_information"}


def test_letter_for_a_caller_with_no_contact_record(world: World) -> None:
    w = world
    w.run(make_account, w.services, "Acme", "acme.test", ANN, partner="Best MSP")
    key = w.run(add_agent, w.services, "desk@operator.test")
    c = w.new_client()
    csrf = desk_signs_in(w, c, "desk@operator.test", key)
    r = c.post("/support/lookup", data={"csrf": csrf, "email": "carl@acme.test"})
    assert 'id="no-contact"' in r.text and 'action="/support/letter"' in r.text
    r = c.post(
        "/support/letter",
        data={"csrf": csrf, "email": "carl@acme.test", "name": "Carl Caller", "named": "ACME.test"},
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"].startswith("attachment;")
    text = " ".join(
        "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(r.content)).pages).split()
    )
    ref = re.search(r"Reference: (SL-[A-Z0-9]{5}-[A-Z0-9]{5})", text)
    assert ref, text
    assert "To whoever manages the account Acme Ltd" in text
    assert "Carl Caller <carl@acme.test>" in text
    assert "add carl@acme.test as a contact" in text
    assert "Best MSP" in text
    assert "never add a contact" in text.lower()
    assert f"{w.settings.portal_base_url.rstrip('/')}/pin" in text
    # an unknown name is quoted, not looked up into someone else's account
    r = c.post(
        "/support/letter", data={"csrf": csrf, "email": "carl@acme.test", "named": "Nope Inc"}
    )
    text = " ".join(pypdf.PdfReader(io.BytesIO(r.content)).pages[0].extract_text().split())
    assert 'named as "Nope Inc"' in text and "Acme Ltd" not in text


def test_a_partner_desk_cannot_see_another_partners_contacts(world: World) -> None:
    w = world
    w.run(make_account, w.services, "Acme", "acme.test", ANN, partner="MSP-A")
    _, bob_id = w.run(make_account, w.services, "Beta", "beta.test", BOB, partner="MSP-B")
    bob_pin = w.run(give_pin, w.services, bob_id)
    key = w.run(add_agent, w.services, "desk@msp-a.test", "MSP-A")
    c = w.new_client()
    csrf = desk_signs_in(w, c, "desk@msp-a.test", key)
    r = c.post("/support/lookup", data={"csrf": csrf, "email": BOB})
    assert 'id="no-contact"' in r.text and "Beta" not in r.text
    r = c.post("/support/verify", data={"csrf": csrf, "email": BOB, "pin": bob_pin})
    assert 'data-result="no_contact"' in r.text and "Beta" not in r.text
    r = c.post("/support/letter", data={"csrf": csrf, "email": BOB, "named": "beta.test"})
    assert "Beta Ltd" not in pypdf.PdfReader(io.BytesIO(r.content)).pages[0].extract_text()
    r = c.post("/support/lookup", data={"csrf": csrf, "email": ANN})
    assert "Acme Ltd" in r.text


def test_a_removed_agent_loses_access_at_once(world: World) -> None:
    w = world
    key = w.run(add_agent, w.services, "desk@operator.test")
    c = w.new_client()
    desk_signs_in(w, c, "desk@operator.test", key)

    async def remove() -> None:
        async with w.services.db.session() as s:
            await agents.remove_agent(s, "desk@operator.test")
            await s.commit()

    w.run(remove)
    r = c.get("/support", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/support/login"
    # a contact's /pin session is no desk session either
    _, _cid = w.run(make_account, w.services, "Acme", "acme.test", ANN)
    contact_signs_in(w, c, ANN)
    r = c.get("/support", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/support/login"


def test_api_verify_with_an_agent_key(world: World) -> None:
    w = world
    _, cid = w.run(make_account, w.services, "Acme", "acme.test", ANN, partner="MSP-A")
    _, bob_id = w.run(make_account, w.services, "Beta", "beta.test", BOB, partner="MSP-B")
    pin = w.run(give_pin, w.services, cid)
    bob_pin = w.run(give_pin, w.services, bob_id)
    key = w.run(add_agent, w.services, "desk@msp-a.test", "MSP-A")
    auth = {"Authorization": f"Bearer {key}"}
    r = w.client.post("/api/v1/support/verify", json={"email": ANN, "pin": pin}, headers=auth)
    assert r.status_code == 200
    body = r.json()
    assert (body["result"], body["account"], body["standing"]) == ("match", "Acme Ltd", "good")
    refused = {a["key"] for a in body["actions"] if not a["allowed"]}
    assert refused == {"add_contact", "delete_service"}
    r = w.client.post("/api/v1/support/verify", json={"email": BOB, "pin": bob_pin}, headers=auth)
    assert r.json()["result"] == "no_contact" and r.json()["account"] is None
    r = w.client.post("/api/v1/support/verify", json={"email": ANN, "pin": pin})
    assert r.status_code == 401 and r.json() == {"error": "missing bearer agent key"}
    r = w.client.post(
        "/api/v1/support/verify",
        json={"email": ANN, "pin": pin},
        headers={"Authorization": "Bearer sma_wrong"},
    )
    assert r.status_code == 401 and r.json() == {"error": "invalid agent key"}
    r = w.client.post("/api/v1/support/verify", json={"email": ANN}, headers=auth)
    assert r.status_code == 400 and r.json()["error"].startswith("pin:")
    r = w.client.post("/api/v1/support/verify", content=b"[", headers=auth)
    assert r.status_code == 400
    # nested too deep for the JSON parser: a 400, not a 500 page (found by fuzzing)
    deep = b"[" * 100_000 + b"]" * 100_000
    r = w.client.post("/api/v1/support/verify", content=deep, headers=auth)
    assert r.status_code == 400 and r.json() == {"error": "the body must be a JSON object"}
    # a control character in the address (PostgreSQL cannot even store a NUL): a 400
    for bad in ("ann\x00@acme.test", "ann@acme.test\x00", "ann@acme\x07.test"):
        r = w.client.post("/api/v1/support/verify", json={"email": bad, "pin": pin}, headers=auth)
        assert r.status_code == 400 and r.json()["error"].startswith("email:"), r.text


def test_a_partner_accounts_contact_gets_the_code_unbranded(world: World) -> None:
    from core.accounts.partners import find_partner
    from core.models import AccountContact, BillingAccount

    w = world
    w.run(make_account, w.services, "Acme", "acme.test", ANN, partner="MSP-A")

    async def partner_account() -> str:
        async with w.services.db.session() as s:
            p = await find_partner(s, "MSP-A")
            s.add(BillingAccount(id="ba_p", external_id="acct_p", kind="partner",
                                 partner_id=p.id, name="MSP-A Holdings"))  # fmt: skip
            await s.flush()
            s.add(AccountContact(id="ct_p", account_id="ba_p", email="cfo@msp-a.test"))
            await s.commit()
        return "ct_p"

    cid = w.run(partner_account)
    c = w.new_client()
    contact_signs_in(w, c, "cfo@msp-a.test")
    page = c.get("/pin")
    assert "MSP-A Holdings" in page.text and "Acme" not in page.text
    _kind, mail = w.run(mails_to, w.services, "cfo@msp-a.test")[0]
    html = mail.get_body(("html",))
    assert html is not None and "Acme" not in html.get_content()
    r = c.post("/pin/reset", data={"csrf": csrf_of(page.text), "contact": cid, "mode": "new"})
    m = re.search(r'id="pin"[^>]*>(\d{6})<', r.text)
    assert m and w.run(pin_ok, w.services, "cfo@msp-a.test", m.group(1)) == "match"


def test_the_api_verify_is_in_the_openapi_document(world: World) -> None:
    doc = world.client.get("/api/v1/openapi.json").json()
    assert "post" in doc["paths"]["/api/v1/support/verify"]
    assert "/api/v1/policy" in doc["paths"]  # the others are still there


def test_pin_code_sends_are_rate_limited(world: World) -> None:
    w = world
    w.run(make_account, w.services, "Acme", "acme.test", ANN)
    c = w.new_client()
    statuses = []
    for _ in range(6):
        page = c.get("/pin")
        r = c.post("/pin/code", data={"csrf": csrf_of(page.text), "email": ANN})
        statuses.append(r.status_code)
    assert statuses == [200] * 5 + [429]
    assert len(w.run(mails_to, w.services, ANN)) == 5
    # five wrong codes end the pending sign-in, even before the code expires
    c2 = w.new_client()
    page = c2.get("/pin")
    r = c2.post("/pin/code", data={"csrf": csrf_of(page.text), "email": "eve@acme.test"})
    got = [
        c2.post("/pin/verify", data={"csrf": csrf_of(r.text), "code": f"00000{n}"}).status_code
        for n in range(6)
    ]
    assert got == [400] * 5 + [429]


def test_caller_addresses_use_the_one_validator(world: World) -> None:
    """The desk's API refuses what core.addresses refuses (a 400 naming ``email``)."""
    w = world
    _, cid = w.run(make_account, w.services, "Acme", "acme.test", ANN, partner="MSP-A")
    pin = w.run(give_pin, w.services, cid)
    auth = {"Authorization": f"Bearer {w.run(add_agent, w.services, 'desk@msp-a.test', 'MSP-A')}"}
    for bad in ("ann@acme", "ann@acme.test.", "@acme.test", "ann@.acme.test"):
        r = w.client.post("/api/v1/support/verify", json={"email": bad, "pin": pin}, headers=auth)
        assert r.status_code == 400 and r.json()["error"].startswith("email:"), (bad, r.text)
    r = w.client.post("/api/v1/support/verify", json={"email": " Ann@Acme.test ", "pin": pin},
                      headers=auth)  # fmt: skip
    assert r.status_code == 200 and r.json()["result"] == "match"
