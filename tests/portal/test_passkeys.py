"""Passkeys and remembered devices through HTTP, on SQLite and PostgreSQL: a recipient adds a
passkey on /account and opens another message with it; the challenge is single use, short
lived, bound to its browser; another origin or RP ID, another identity's credential and a
sign count that goes back are refused; a tenant without code fallback refuses the code to
an identity with a passkey; the remembered-device cookie works, expires, is revoked, is
refused under another User-Agent and is not offered when the tenant's days are 0."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select, update

from conversations.protection import editable
from core.models import PortalSession
from portal.models import Passkey, RememberedDevice, WebAuthnChallenge
from portal.signin.devices import DEVICE_COOKIE
from tests.helpers.soft_authenticator import SoftAuthenticator

from .conftest import World, csrf_of

BOB = "bob@client.example"
CAROL = "carol@client.example"


def _tenant(world: World, **protection: Any) -> str:
    tenant = world.tenant("Acme", "acme.example")

    async def set_protection() -> None:
        async with world.services.db.session() as s:
            row = await editable(s, tenant)
            for key, value in protection.items():
                setattr(row, key, value)
            await s.commit()

    if protection:
        world.run(set_protection)
    return tenant


def _account_csrf(client: Any) -> str:
    page = client.get("/account")
    assert page.status_code == 200, page.text
    return csrf_of(page.text)


def add_passkey(client: Any, device: SoftAuthenticator, name: str = "Laptop") -> Any:
    csrf = _account_csrf(client)
    opts = client.post("/account/passkeys/options", data={"csrf": csrf})
    assert opts.status_code == 200, opts.text
    body = opts.json()
    return client.post(
        "/account/passkeys",
        data={
            "csrf": csrf,
            "name": name,
            "ticket": body["ticket"],
            "credential": device.create(body["options"]),
        },
    )


def passkey_options(client: Any, token: str) -> tuple[str, dict[str, Any]]:
    csrf = csrf_of(client.get(f"/m/{token}").text)
    r = client.post(f"/m/{token}/passkey/options", data={"csrf": csrf})
    assert r.status_code == 200, r.text
    return csrf, r.json()


def passkey_signin(client: Any, token: str, device: SoftAuthenticator, **tweak: Any) -> Any:
    csrf, body = passkey_options(client, token)
    credential = device.get(body["options"], **tweak)
    return client.post(
        f"/m/{token}/passkey",
        data={"csrf": csrf, "ticket": body["ticket"], "credential": credential},
    )


def sign_out(client: Any) -> None:
    csrf = _account_csrf(client)
    assert client.post("/logout", data={"csrf": csrf}).status_code == 200


def _passkey_world(world: World, **protection: Any) -> tuple[str, SoftAuthenticator, str]:
    """Bob signed in with a code to one message, added a passkey, signed out; returns the
    tenant, his authenticator and the link of a second message to him."""
    tenant = _tenant(world, **protection)
    first = world.seal(tenant, recipients=[BOB])
    second = world.seal(tenant, recipients=[BOB], subject="Second")
    world.sign_in(first.tokens[BOB])
    device = SoftAuthenticator()
    r = add_passkey(world.client, device)
    assert r.status_code == 200, r.text
    assert r.json() == {"redirect": "/account?done=added"}
    sign_out(world.client)
    return tenant, device, second.tokens[BOB]


def test_a_passkey_opens_a_second_message_without_a_code(world: World) -> None:
    tenant, device, token = _passkey_world(world)
    page = world.client.get(f"/m/{token}")
    assert "Use a passkey" in page.text and "/static/passkeys.js" in page.text
    codes_before = len(world.codes())
    r = passkey_signin(world.client, token, device)
    assert r.status_code == 200, r.text
    target = r.json()["redirect"]
    assert world.client.get(target).status_code == 200
    assert len(world.codes()) == codes_before  # no code was sent

    async def factor() -> list[str]:
        async with world.services.db.session() as s:
            rows = (await s.execute(select(PortalSession.factor))).scalars().all()
            return [f for f in rows]

    assert "passkey" in world.run(factor)
    account = world.client.get("/account").text
    assert "Passkey &ldquo;Laptop&rdquo;, added today, last used today." in account


def test_the_challenge_is_single_use_and_expires(world: World) -> None:
    _tenant_id, device, token = _passkey_world(world)
    csrf, body = passkey_options(world.client, token)
    credential = device.get(body["options"])
    data = {"csrf": csrf, "ticket": body["ticket"], "credential": credential}
    assert world.client.post(f"/m/{token}/passkey", data=data).status_code == 200
    sign_out(world.client)
    again = world.client.post(f"/m/{token}/passkey", data=data)
    assert again.status_code == 400
    assert "expired or was already used" in again.json()["error"]

    csrf, body = passkey_options(world.client, token)

    async def age() -> None:
        async with world.services.db.session() as s:
            await s.execute(update(WebAuthnChallenge).values(expires_at=1.0))
            await s.commit()

    world.run(age)
    late = world.client.post(
        f"/m/{token}/passkey",
        data={"csrf": csrf, "ticket": body["ticket"], "credential": device.get(body["options"])},
    )
    assert late.status_code == 400 and "expired" in late.json()["error"]


def test_the_challenge_is_bound_to_its_browser(world: World) -> None:
    _tenant_id, device, token = _passkey_world(world)
    _csrf, body = passkey_options(world.client, token)
    other = world.new_client()
    other_csrf = csrf_of(other.get(f"/m/{token}").text)
    r = other.post(
        f"/m/{token}/passkey",
        data={
            "csrf": other_csrf,
            "ticket": body["ticket"],
            "credential": device.get(body["options"]),
        },
    )
    assert r.status_code == 400


@pytest.mark.parametrize(
    "tweak",
    [{"origin": "https://evil.example"}, {"rp_id": "evil.example"}],
    ids=["origin", "rp-id"],
)
def test_another_origin_or_rp_id_is_refused(world: World, tweak: dict[str, str]) -> None:
    _tenant_id, device, token = _passkey_world(world)
    r = passkey_signin(world.client, token, device, **tweak)
    assert r.status_code == 400
    assert "not accepted" in r.json()["error"]
    assert world.client.get("/inbox").status_code == 401


def test_a_passkey_registered_on_another_origin_is_refused(world: World) -> None:
    tenant = _tenant(world)
    first = world.seal(tenant, recipients=[BOB])
    world.sign_in(first.tokens[BOB])
    csrf = _account_csrf(world.client)
    body = world.client.post("/account/passkeys/options", data={"csrf": csrf}).json()
    device = SoftAuthenticator()
    r = world.client.post(
        "/account/passkeys",
        data={
            "csrf": csrf,
            "name": "x",
            "ticket": body["ticket"],
            "credential": device.create(body["options"], origin="https://evil.example"),
        },
    )
    assert r.status_code == 400 and "could not be added" in r.json()["error"]


def test_a_credential_of_another_address_or_tenant_is_refused(world: World) -> None:
    tenant, device, _token = _passkey_world(world)
    to_carol = world.seal(tenant, recipients=[CAROL]).tokens[CAROL]
    r = passkey_signin(world.client, to_carol, device)
    assert r.status_code == 400 and "not accepted" in r.json()["error"]

    other = world.tenant("Other", "other.example")
    to_bob_elsewhere = world.seal(other, recipients=[BOB]).tokens[BOB]
    r = passkey_signin(world.client, to_bob_elsewhere, device)
    assert r.status_code == 400 and "not accepted" in r.json()["error"]
    assert "Use a passkey" not in world.client.get(f"/m/{to_bob_elsewhere}").text


def test_a_sign_count_that_goes_back_is_refused(world: World) -> None:
    _tenant_id, device, token = _passkey_world(world)
    assert passkey_signin(world.client, token, device, sign_count=5).status_code == 200
    sign_out(world.client)
    r = passkey_signin(world.client, token, device, sign_count=3)
    assert r.status_code == 400 and "not accepted" in r.json()["error"]


def test_without_code_fallback_a_passkey_holder_gets_no_code(world: World) -> None:
    _tenant_id, device, token = _passkey_world(world, code_fallback=False)
    page = world.client.get(f"/m/{token}")
    assert "Send me a code" not in page.text
    assert "asks you to sign in with your passkey" in page.text
    csrf = csrf_of(page.text)
    before = len(world.codes())
    sent = world.client.post(f"/m/{token}/code", data={"csrf": csrf})
    assert sent.status_code == 403
    assert "Your organisation asks you to sign in with your passkey" in sent.text
    assert len(world.codes()) == before
    tried = world.client.post(f"/m/{token}/verify", data={"csrf": csrf, "code": "123456"})
    assert tried.status_code == 403
    assert passkey_signin(world.client, token, device).status_code == 200


def test_without_code_fallback_an_address_with_no_passkey_still_gets_a_code(world: World) -> None:
    tenant = _tenant(world, code_fallback=False)
    sealed = world.seal(tenant, recipients=[BOB])
    assert world.sign_in(sealed.tokens[BOB]).status_code == 303


def test_a_second_passkey_needs_a_passkey_session(world: World) -> None:
    tenant, device, token = _passkey_world(world)
    world.sign_in(token)  # by code: the mailbox alone
    r = world.client.post("/account/passkeys/options", data={"csrf": _account_csrf(world.client)})
    assert r.status_code == 403 and "first confirm" in r.json()["error"]
    # confirming with the passkey makes the session's factor "passkey"; then it may
    csrf = _account_csrf(world.client)
    body = world.client.post("/account/passkey/confirm/options", data={"csrf": csrf}).json()
    done = world.client.post(
        "/account/passkey/confirm",
        data={"csrf": csrf, "ticket": body["ticket"], "credential": device.get(body["options"])},
    )
    assert done.status_code == 200, done.text
    assert add_passkey(world.client, SoftAuthenticator(), "Phone").status_code == 200


# --- remembered devices ---------------------------------------------------------------------


def remembered_sign_in(world: World, token: str) -> Any:
    world.request_code(token)
    page = world.client.get(f"/m/{token}")
    return world.client.post(
        f"/m/{token}/verify",
        data={"csrf": csrf_of(page.text), "code": world.latest_code(), "remember": "yes"},
        follow_redirects=False,
    )


def _continue(world: World, token: str) -> Any:
    page = world.client.get(f"/m/{token}")
    return world.client.post(
        f"/m/{token}/device", data={"csrf": csrf_of(page.text)}, follow_redirects=False
    )


def test_a_remembered_device_signs_in_without_a_code(world: World) -> None:
    tenant = _tenant(world, remember_days=7)
    first = world.seal(tenant, recipients=[BOB])
    second = world.seal(tenant, recipients=[BOB], subject="Second")
    world.request_code(first.tokens[BOB])
    assert (
        "Remember this device for 7 days"
        in world.client.post(
            f"/m/{first.tokens[BOB]}/code",
            data={"csrf": csrf_of(world.client.get(f"/m/{first.tokens[BOB]}").text)},
        ).text
    )
    r = remembered_sign_in(world, first.tokens[BOB])
    assert r.status_code == 303
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith(DEVICE_COOKIE))
    assert "Max-Age=604800" in cookie and "HttpOnly" in cookie and "Secure" in cookie
    assert "samesite=lax" in cookie.lower()
    sign_out(world.client)
    page = world.client.get(f"/m/{second.tokens[BOB]}")
    assert "Continue as b***b@client.example" in page.text
    before = len(world.codes())
    done = _continue(world, second.tokens[BOB])
    assert done.status_code == 303 and done.headers["location"].startswith("/messages/")
    assert world.client.get(done.headers["location"]).status_code == 200
    assert len(world.codes()) == before
    account = world.client.get("/account").text
    assert "(this device), remembered today until" in account


def test_a_remembered_device_expires_and_can_be_forgotten(world: World) -> None:
    tenant = _tenant(world)
    sealed = world.seal(tenant, recipients=[BOB])
    token = sealed.tokens[BOB]
    remembered_sign_in(world, token)
    sign_out(world.client)

    async def expire() -> None:
        async with world.services.db.session() as s:
            await s.execute(update(RememberedDevice).values(expires_at=1.0))
            await s.commit()

    world.run(expire)
    assert "Continue as" not in world.client.get(f"/m/{token}").text
    assert _continue(world, token).headers["location"] == f"/m/{token}"

    remembered_sign_in(world, token)
    csrf = _account_csrf(world.client)
    assert world.client.post("/account/devices/forget", data={"csrf": csrf}).status_code == 200
    sign_out(world.client)
    assert "Continue as" not in world.client.get(f"/m/{token}").text
    assert _continue(world, token).headers["location"] == f"/m/{token}"


def test_a_remembered_device_ends_with_sign_out_everywhere(world: World) -> None:
    tenant = _tenant(world)
    token = world.seal(tenant, recipients=[BOB]).tokens[BOB]
    remembered_sign_in(world, token)
    saved = world.client.cookies.get(DEVICE_COOKIE)
    csrf = _account_csrf(world.client)
    assert world.client.post("/account/sign-out-everywhere", data={"csrf": csrf}).status_code == 200
    world.client.cookies.set(DEVICE_COOKIE, saved)  # a copy kept elsewhere
    assert "Continue as" not in world.client.get(f"/m/{token}").text


def test_a_remembered_device_is_refused_under_another_user_agent(world: World) -> None:
    tenant = _tenant(world)
    token = world.seal(tenant, recipients=[BOB]).tokens[BOB]
    remembered_sign_in(world, token)
    sign_out(world.client)
    world.client.headers["user-agent"] = "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0"
    assert "Continue as" not in world.client.get(f"/m/{token}").text
    assert _continue(world, token).headers["location"] == f"/m/{token}"


def test_no_remembering_when_the_tenant_says_0_days(world: World) -> None:
    tenant = _tenant(world, remember_days=0)
    token = world.seal(tenant, recipients=[BOB]).tokens[BOB]
    code_page = world.request_code(token)
    assert "Remember this device" not in code_page.text
    r = remembered_sign_in(world, token)
    assert r.status_code == 303
    assert not any(c.startswith(DEVICE_COOKIE) for c in r.headers.get_list("set-cookie"))
    sign_out(world.client)
    assert "Continue as" not in world.client.get(f"/m/{token}").text


def test_passkeys_are_stored_without_secrets(world: World) -> None:
    _passkey_world(world)

    async def rows() -> list[Passkey]:
        async with world.services.db.session() as s:
            return list((await s.execute(select(Passkey))).scalars())

    (row,) = world.run(rows)
    assert row.rp_id == "testserver" and row.email == BOB and row.transports == "internal"
    assert json.loads(json.dumps(row.name)) == "Laptop"
