"""``/admin/users``, ``/admin/api-keys`` and ``/admin/settings`` on both databases (issue 13,
item 8): an invitation mail that lets the new user sign in, roles and the last-admin guard,
an API key shown once that works until it is revoked, settings changed through the same
validation as the CLI — each audited, each refused readably for bad input, and nothing of
another tenant reachable."""

from __future__ import annotations

import email
import re

from sqlalchemy import select

from core.models import AllowedNetwork, ApiKey, AuditEvent, Tenant, User
from tests.portal.conftest import World, csrf_of
from tests.portal.test_admin import _add_user, sign_in

ADMIN = "admin@acme.example"
OFFICER = "officer@acme.example"


def _setup(world: World) -> str:
    t = world.tenant("Acme", "acme.example")
    world.run(_add_user, world.services, t, ADMIN, "admin")
    world.run(_add_user, world.services, t, OFFICER, "compliance")
    return t


async def _rows(world: World, model, *where):  # noqa: ANN001, ANN202
    async with world.services.db.session() as s:
        return list((await s.execute(select(model).where(*where))).scalars())


def _post(world: World, page: str, action: str, data: dict[str, str]):  # noqa: ANN202
    csrf = csrf_of(world.client.get(page).text)
    return world.client.post(action, data={"csrf": csrf, **data}, follow_redirects=False)


async def _mails_to(world: World, rcpt: str) -> list[email.message.Message]:
    from core.models import OutboxItem, OutboxRecipient

    async with world.services.db.session() as s:
        stmt = (
            select(OutboxItem)
            .join(OutboxRecipient, OutboxRecipient.outbox_id == OutboxItem.id)
            .where(OutboxRecipient.rcpt == rcpt)
        )
        items = list((await s.execute(stmt)).scalars())
        out = []
        for item in items:
            raw = await world.services.vault.read(s, item.tenant_id, item.object_id)
            out.append(email.message_from_bytes(raw))
        return out


def _text(msg: email.message.Message) -> str:
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            return part.get_payload(decode=True).decode()
    return ""


def test_invite_change_role_and_remove(world: World) -> None:
    t = _setup(world)
    sign_in(world, ADMIN)
    r = _post(
        world, "/admin/users", "/admin/users", {"email": "new@acme.example", "role": "sender"}
    )
    assert r.status_code == 303
    mails = world.run(_mails_to, world, "new@acme.example")
    assert len(mails) == 1 and "invited" in mails[0]["Subject"]
    assert "/sent/login" in _text(mails[0]) and ADMIN in _text(mails[0])
    new = world.run(_rows, world, User, User.email == "new@acme.example")[0]
    assert new.role == "sender" and new.invited_by == ADMIN

    # refused readably: another domain, a duplicate, garbage
    for data, words in (
        ({"email": "x@other.example", "role": "sender"}, "domains"),
        ({"email": "new@acme.example", "role": "sender"}, "already a user"),
        ({"email": "not an address", "role": "sender"}, "Not invited"),
        ({"email": "y@acme.example", "role": "root"}, "invalid role"),
    ):
        r = _post(world, "/admin/users", "/admin/users", data)
        assert r.status_code == 400 and words in r.text, (data, r.text[:200])

    page = world.client.get("/admin/users")
    assert "has not signed in yet" in page.text and "is a sender" in page.text
    r = _post(world, "/admin/users", f"/admin/users/{new.id}/role", {"role": "compliance"})
    assert r.status_code == 303
    assert world.run(_rows, world, User, User.id == new.id)[0].role == "compliance"

    me = world.run(_rows, world, User, User.email == ADMIN)[0]
    r = _post(world, "/admin/users", f"/admin/users/{me.id}/role", {"role": "sender"})
    assert r.status_code == 400 and "last admin" in r.text
    r = _post(world, "/admin/users", f"/admin/users/{me.id}/remove", {})
    assert r.status_code == 400 and "last admin" in r.text

    assert world.client.get(f"/admin/users/{new.id}/remove").status_code == 200
    r = _post(world, "/admin/users", f"/admin/users/{new.id}/remove", {})
    assert r.status_code == 303 and not world.run(_rows, world, User, User.id == new.id)

    other = world.tenant("Beta", "beta.example")
    world.run(_add_user, world.services, other, "b@beta.example", "admin")
    theirs = world.run(_rows, world, User, User.email == "b@beta.example")[0]
    r = _post(world, "/admin/users", f"/admin/users/{theirs.id}/remove", {})
    assert r.status_code == 404
    assert world.client.get(f"/admin/users/{theirs.id}/remove").status_code == 404
    actions = {e.action for e in world.run(_rows, world, AuditEvent, AuditEvent.tenant_id == t)}
    assert {"user.add", "user.role", "user.remove"} <= actions
    # the sign-in is recorded for the users page
    assert world.run(_rows, world, User, User.email == ADMIN)[0].last_signin_at is not None


def test_an_api_key_shown_once_works_until_revoked(world: World) -> None:
    t = _setup(world)
    sign_in(world, ADMIN)
    r = _post(world, "/admin/api-keys", "/admin/api-keys", {"label": "ticketing", "scope": "admin"})
    assert r.status_code == 200 and "only time it is shown" in r.text
    assert r.headers["cache-control"] == "no-store"
    key = re.search(r"smk_[A-Za-z0-9_\-]+", r.text).group(0)
    assert key not in world.client.get("/admin/api-keys").text  # never again
    rows = world.run(_rows, world, ApiKey, ApiKey.tenant_id == t, ApiKey.label == "ticketing")
    assert rows and key not in repr(vars(rows[0]))

    api = world.new_client()
    auth = {"Authorization": f"Bearer {key}"}
    assert api.get("/api/v1/policy", headers=auth).status_code == 200
    row = world.run(_rows, world, ApiKey, ApiKey.label == "ticketing")[0]
    assert row.last_used_at is not None
    assert "last used on" in world.client.get("/admin/api-keys").text

    kid = row.key_hash[:16]
    assert world.client.get(f"/admin/api-keys/{kid}/revoke").status_code == 200
    r = _post(world, "/admin/api-keys", f"/admin/api-keys/{kid}/revoke", {})
    assert r.status_code == 303
    assert api.get("/api/v1/policy", headers=auth).status_code == 401
    assert "revoked on" in world.client.get("/admin/api-keys").text
    r = _post(world, "/admin/api-keys", "/admin/api-keys", {"label": "", "scope": "admin"})
    assert r.status_code == 400 and "No key made" in r.text


def test_settings_change_with_the_cli_validation(world: World) -> None:
    t = _setup(world)
    sign_in(world, ADMIN)
    r = _post(
        world,
        "/admin/settings",
        "/admin/settings",
        {
            "journal_address": "journal@msp.example",
            "relay": "mail.acme.example:25",
            "portal_host": "Secure.Acme.Example",
            "reply_default": "sender",
            "forward_default": "internal",
            "sent_users": "listed",
            "receipt_default": "yes",
        },
    )
    assert r.status_code == 303
    tenant = world.run(_rows, world, Tenant, Tenant.id == t)[0]
    assert (tenant.journal_address, tenant.relay, tenant.portal_host) == (
        "journal@msp.example",
        "mail.acme.example:25",
        "secure.acme.example",
    )
    assert (tenant.reply_default, tenant.forward_default, tenant.receipt_default) == (
        "sender",
        "internal",
        True,
    )
    page = world.client.get("/admin/settings")
    assert "secure.acme.example</strong>, its own portal host" in page.text

    r = _post(
        world,
        "/admin/settings",
        "/admin/settings",
        {
            "relay": "not a hop!",
            "reply_default": "all",
            "forward_default": "yes",
            "sent_users": "domain",
        },
    )
    assert r.status_code == 400 and "next hop" in r.text
    assert world.run(_rows, world, Tenant, Tenant.id == t)[0].relay == "mail.acme.example:25"

    r = _post(world, "/admin/settings", "/admin/settings/networks", {"cidr": "192.0.2.7/24"})
    assert r.status_code == 303
    nets = world.run(_rows, world, AllowedNetwork, AllowedNetwork.tenant_id == t)
    assert [n.cidr for n in nets] == ["192.0.2.0/24"]
    r = _post(world, "/admin/settings", "/admin/settings/networks", {"cidr": "nonsense"})
    assert r.status_code == 400 and "invalid network" in r.text
    r = _post(world, "/admin/settings", f"/admin/settings/networks/{nets[0].id}/remove", {})
    assert r.status_code == 303
    assert not world.run(_rows, world, AllowedNetwork, AllowedNetwork.tenant_id == t)
    actions = [e.action for e in world.run(_rows, world, AuditEvent, AuditEvent.tenant_id == t)]
    assert "tenant.update" in actions and "tenant.network.remove" in actions


def test_officers_read_but_do_not_change(world: World) -> None:
    _setup(world)
    sign_in(world, OFFICER)
    for page in ("/admin/users", "/admin/api-keys", "/admin/settings"):
        r = world.client.get(page)
        assert r.status_code == 200 and 'name="csrf"' not in r.text.split("<main")[1], page
    csrf = csrf_of(world.client.get("/admin/policy").text)
    r = world.client.post(
        "/admin/users", data={"csrf": csrf, "email": "z@acme.example", "role": "admin"}
    )
    assert r.status_code == 404
    r = world.client.post("/admin/api-keys", data={"csrf": csrf, "label": "x", "scope": "admin"})
    assert r.status_code == 404
