"""/admin/keys on both databases, with real keys made at test start: import by paste and
by upload, refusals shown with the directory's one-line reason (422), removal after a
confirmation, who may do what (admin manages, compliance looks, a sender's session and
another tenant see nothing), and CSRF on every form."""

from __future__ import annotations

from sqlalchemy import select

from core import recipient_keys
from core.models import AuditEvent, RecipientKey
from core.services import Services
from tests.helpers import keygen
from tests.helpers.keygen import Certs, PgpKeys
from tests.portal.conftest import World, csrf_of
from tests.portal.test_admin import _add_user, sign_in

pgp_keys, certs = keygen.pgp_keys, keygen.certs  # session fixtures


def setup(world: World) -> dict[str, str]:
    a = world.tenant("Acme", "acme.example")
    b = world.tenant("Beta", "beta.example")
    world.run(_add_user, world.services, a, "admin@acme.example", "admin")
    world.run(_add_user, world.services, a, "officer@acme.example", "compliance")
    world.run(_add_user, world.services, a, "sender@acme.example", "sender")
    world.run(_add_user, world.services, b, "admin@beta.example", "admin")
    return {"a": a, "b": b}


async def _keys(services: Services, tenant_id: str) -> list[RecipientKey]:
    async with services.db.session() as s:
        return list(await recipient_keys.list_keys(s, tenant_id))


async def _import(services: Services, tenant_id: str, data: bytes) -> str:
    async with services.db.session() as s:
        rows = await recipient_keys.import_keys(s, tenant_id, data)
        await s.commit()
        return rows[0].id


async def _audit(services: Services, action: str) -> list[AuditEvent]:
    async with services.db.session() as s:
        rows = await s.execute(select(AuditEvent).where(AuditEvent.action == action))
        return list(rows.scalars())


def test_import_paste_and_upload_then_remove(world: World, pgp_keys: PgpKeys, certs: Certs) -> None:
    ids = setup(world)
    sign_in(world, "admin@acme.example")
    page = world.client.get("/admin/keys")
    assert page.status_code == 200 and "No keys yet" in page.text
    assert 'href="/admin/keys"' in world.client.get("/admin").text  # in the navigation
    csrf = csrf_of(page.text)

    pasted = world.client.post(
        "/admin/keys",
        data={"csrf": csrf, "armored": pgp_keys.public["bob"].decode()},
        files={"file": ("", b"", "application/octet-stream")},
        follow_redirects=False,
    )
    assert pasted.status_code == 303 and pasted.headers["location"].startswith("/admin/keys?")
    uploaded = world.client.post(
        "/admin/keys",
        data={"csrf": csrf},
        files={"file": ("carol.der", certs.der["carol"], "application/pkix-cert")},
    )
    assert uploaded.status_code == 200 and "Imported 1 key." in uploaded.text
    listing = uploaded.text
    assert pgp_keys.fingerprint["bob"] in listing and "bob@recipient.test" in listing
    assert "OpenPGP" in listing and "rsa3072" in listing
    assert "S/MIME" in listing and "carol@recipient.test" in listing
    keys = world.run(_keys, world.services, ids["a"])
    assert {k.kind for k in keys} == {"pgp", "smime"}
    events = world.run(_audit, world.services, "recipient_key.import")
    assert {e.actor for e in events} == {"admin@acme.example"}

    bob = next(k for k in keys if k.kind == "pgp")
    confirm = world.client.get(f"/admin/keys/{bob.id}/remove")
    assert confirm.status_code == 200 and bob.fingerprint in confirm.text
    removed = world.client.post(
        f"/admin/keys/{bob.id}/remove", data={"csrf": csrf_of(confirm.text)}
    )
    assert removed.status_code == 200 and "The key was removed." in removed.text
    assert bob.fingerprint not in removed.text
    assert [k.kind for k in world.run(_keys, world.services, ids["a"])] == ["smime"]
    [event] = world.run(_audit, world.services, "recipient_key.remove")
    assert event.actor == "admin@acme.example" and event.subject_id == bob.id
    gone = world.client.post(f"/admin/keys/{bob.id}/remove", data={"csrf": csrf})
    assert gone.status_code == 404


def test_refused_keys_show_the_reason(world: World, pgp_keys: PgpKeys, certs: Certs) -> None:
    ids = setup(world)
    sign_in(world, "admin@acme.example")
    csrf = csrf_of(world.client.get("/admin/keys").text)
    cases = [
        ({"armored": pgp_keys.public["expired"].decode()}, None, "has expired"),
        ({"armored": pgp_keys.public["revoked"].decode()}, None, "is revoked"),
        ({}, ("weak.pem", certs.pem["weak"]), "too weak: RSA 1024 bits"),
        ({"armored": pgp_keys.secret_bob.decode()}, None, "private key material"),
        ({"armored": "hello"}, None, "not an OpenPGP key or an X.509 certificate"),
        ({}, None, "no key or certificate given"),
    ]
    for fields, upload, reason in cases:
        files = {"file": (upload[0], upload[1], "application/x-pem-file")} if upload else None
        r = world.client.post("/admin/keys", data={"csrf": csrf, **fields}, files=files)
        assert r.status_code == 422, (reason, r.text)
        assert "The key was not imported" in r.text and reason in r.text
        assert r.headers["content-security-policy"].endswith("frame-ancestors 'none'")
    expired = world.client.post(
        "/admin/keys", data={"csrf": csrf, "armored": pgp_keys.public["expired"].decode()}
    )
    assert pgp_keys.fingerprint["expired"] in expired.text
    assert world.run(_keys, world.services, ids["a"]) == []
    big = world.client.post(
        "/admin/keys",
        data={"csrf": csrf},
        files={"file": ("big.asc", b"x" * (recipient_keys.MAX_KEY_BYTES + 10), "text/plain")},
    )
    assert big.status_code == 422 and "too large" in big.text


def test_roles_and_tenants(world: World, pgp_keys: PgpKeys, certs: Certs) -> None:
    ids = setup(world)
    key_id = world.run(_import, world.services, ids["a"], certs.pem["carol"])
    assert world.client.get("/admin/keys", follow_redirects=False).status_code == 303
    assert world.client.post("/admin/keys", data={"csrf": "x"}).status_code == 401
    assert world.client.post(f"/admin/keys/{key_id}/remove", data={"csrf": "x"}).status_code == 401

    officer = sign_in(world, "officer@acme.example", world.new_client())
    view = officer.get("/admin/keys")
    assert view.status_code == 200 and "carol@recipient.test" in view.text
    assert "Import keys" not in view.text and "/remove" not in view.text
    csrf = csrf_of(view.text)
    refused = officer.post(
        "/admin/keys", data={"csrf": csrf, "armored": pgp_keys.public["bob"].decode()}
    )
    assert refused.status_code == 403
    assert officer.get(f"/admin/keys/{key_id}/remove").status_code == 403
    assert officer.post(f"/admin/keys/{key_id}/remove", data={"csrf": csrf}).status_code == 403

    other = sign_in(world, "admin@beta.example", world.new_client())
    page = other.get("/admin/keys")
    assert page.status_code == 200 and "carol@recipient.test" not in page.text
    assert other.get(f"/admin/keys/{key_id}/remove").status_code == 404
    assert (
        other.post(f"/admin/keys/{key_id}/remove", data={"csrf": csrf_of(page.text)}).status_code
        == 404
    )
    assert len(world.run(_keys, world.services, ids["a"])) == 1


def test_csrf_on_import_and_remove(world: World, pgp_keys: PgpKeys, certs: Certs) -> None:
    ids = setup(world)
    key_id = world.run(_import, world.services, ids["a"], certs.pem["carol"])
    sign_in(world, "admin@acme.example")
    page = world.client.get("/admin/keys")
    csrf = csrf_of(page.text)
    armored = pgp_keys.public["bob"].decode()
    for data, headers in [
        ({"armored": armored}, {}),
        ({"armored": armored, "csrf": "forged"}, {}),
        ({"armored": armored, "csrf": csrf}, {"Sec-Fetch-Site": "cross-site"}),
        ({"armored": armored, "csrf": csrf}, {"Origin": "https://evil.example"}),
    ]:
        r = world.client.post(
            "/admin/keys", data=data, headers=headers, files={"file": ("", b"", "text/plain")}
        )
        assert r.status_code == 403
        r = world.client.post(f"/admin/keys/{key_id}/remove", data=data, headers=headers)
        assert r.status_code == 403
    assert [k.kind for k in world.run(_keys, world.services, ids["a"])] == ["smime"]
