"""Passkeys and remembered devices at the typed-address doors (``/sent/login``,
``/admin/login``), on SQLite and PostgreSQL: a discoverable passkey signs a sender in with no
address typed; the admin door still checks the role; the code is refused to a passkey
holder when the tenant forbids the fallback; an admin removes a lost passkey (and the
address's remembered devices); a remembered device continues at /sent."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from core.models import AuditEvent
from tests.helpers.soft_authenticator import SoftAuthenticator

from .conftest import World, csrf_of
from .test_admin import _add_user
from .test_admin import sign_in as admin_sign_in
from .test_passkeys import _tenant, add_passkey, passkey_options
from .test_sent import sent_sign_in

SENDER = "sender@acme.example"
ADMIN = "boss@acme.example"
BOB = "bob@client.example"


def _door_signin(client: Any, door: str, device: SoftAuthenticator) -> Any:
    csrf = csrf_of(client.get(f"/{door}/login").text)
    r = client.post(f"/{door}/passkey/options", data={"csrf": csrf})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["options"].get("allowCredentials", []) == []  # discoverable: no address typed
    return client.post(
        f"/{door}/passkey",
        data={"csrf": csrf, "ticket": body["ticket"], "credential": device.get(body["options"])},
    )


def _people(world: World, **protection: Any) -> str:
    tenant = _tenant(world, **protection)
    world.run(_add_user, world.services, tenant, SENDER, "sender")
    world.run(_add_user, world.services, tenant, ADMIN, "admin")
    return tenant


def test_a_sender_signs_in_with_a_passkey_and_no_address(world: World) -> None:
    _people(world)
    sent_sign_in(world, SENDER)
    device = SoftAuthenticator()
    assert add_passkey(world.client, device).status_code == 200
    other = world.new_client()
    page = other.get("/sent/login").text
    assert "Sign in with a passkey" in page and "/static/passkeys.js" in page
    r = _door_signin(other, "sent", device)
    assert r.status_code == 200, r.text
    assert r.json() == {"redirect": "/sent"}
    assert other.get("/sent", follow_redirects=False).status_code == 200


def test_the_admin_door_still_checks_the_role(world: World) -> None:
    _people(world)
    sent_sign_in(world, SENDER)
    sender_key = SoftAuthenticator()
    assert add_passkey(world.client, sender_key).status_code == 200
    r = _door_signin(world.new_client(), "admin", sender_key)
    assert r.status_code == 400 and "does not let you sign in here" in r.json()["error"]

    admin_client = world.new_client()
    admin_sign_in(world, ADMIN, admin_client)
    admin_key = SoftAuthenticator()
    assert add_passkey(admin_client, admin_key).status_code == 200
    fresh = world.new_client()
    r = _door_signin(fresh, "admin", admin_key)
    assert r.status_code == 200 and r.json() == {"redirect": "/admin"}
    assert fresh.get("/admin", follow_redirects=False).status_code == 200


def test_the_doors_refuse_the_code_to_a_passkey_holder_without_fallback(world: World) -> None:
    _people(world, code_fallback=False)
    sent_sign_in(world, SENDER)  # no passkey yet: the code still works
    assert add_passkey(world.client, SoftAuthenticator()).status_code == 200
    before = len(world.codes())
    other = world.new_client()
    r = other.post(
        "/sent/login", data={"csrf": csrf_of(other.get("/sent/login").text), "email": SENDER}
    )
    assert r.status_code == 403
    assert "Your organisation asks you to sign in with your passkey" in r.text
    assert len(world.codes()) == before
    admin_sign_in(world, ADMIN, world.new_client())  # an address with no passkey: a code


def test_an_admin_removes_the_passkeys_and_devices_of_an_address(world: World) -> None:
    tenant = _people(world, code_fallback=False)
    token = world.seal(tenant, recipients=[BOB]).tokens[BOB]
    world.request_code(token)
    page = world.client.get(f"/m/{token}")
    world.client.post(
        f"/m/{token}/verify",
        data={"csrf": csrf_of(page.text), "code": world.latest_code(), "remember": "yes"},
    )
    assert add_passkey(world.client, SoftAuthenticator()).status_code == 200
    bob = world.client
    assert "Send me a code" not in bob.get(f"/m/{token}").text

    admin = world.new_client()
    admin_sign_in(world, ADMIN, admin)
    users = admin.get("/admin/users").text
    assert "Remove the passkeys of an address" in users
    r = admin.post(
        "/admin/users/passkeys/remove",
        data={"csrf": csrf_of(users), "email": "Bob@Client.example"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert "can sign in with an emailed code again" in admin.get(r.headers["location"]).text

    async def audited() -> list[AuditEvent]:
        async with world.services.db.session() as s:
            stmt = select(AuditEvent).where(AuditEvent.action == "admin.passkeys.removed")
            return list((await s.execute(stmt)).scalars())

    (event,) = world.run(audited)
    assert event.actor == ADMIN
    entry = world.new_client().get(f"/m/{token}").text
    assert "Send me a code" in entry and "Use a passkey" not in entry
    _csrf, _body = passkey_options(world.new_client(), token)  # options still answer
    assert "Continue as" not in bob.get(f"/m/{token}").text  # the device is forgotten too


def test_a_remembered_device_continues_at_the_sent_door(world: World) -> None:
    _people(world, remember_days=14)
    page = world.client.get("/sent/login")
    r = world.client.post("/sent/login", data={"csrf": csrf_of(page.text), "email": SENDER})
    assert "Remember this device for 14 days" in r.text
    r = world.client.post(
        "/sent/verify",
        data={"csrf": csrf_of(r.text), "code": world.latest_code(), "remember": "yes"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    world.client.cookies.delete("__Host-sealmail_session")
    login = world.client.get("/sent/login").text
    assert "Continue as s***r@acme.example" in login
    device = re.search(r'name="device" value="([^"]+)"', login)
    assert device
    before = len(world.codes())
    done = world.client.post(
        "/sent/device",
        data={"csrf": csrf_of(login), "device": device.group(1)},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/sent"
    assert world.client.get("/sent", follow_redirects=False).status_code == 200
    assert len(world.codes()) == before
    # the admin door does not offer a sender's remembered address
    world.client.cookies.delete("__Host-sealmail_session")
    assert "Continue as" not in world.client.get("/admin/login").text
