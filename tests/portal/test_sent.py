"""/sent on both databases: a sender signs in with a one-time code at /sent/login and sees
only the messages whose envelope sender is their address in their tenant — per recipient the
method, the delivery state and whether a portal recipient opened it — and, per message, the
policy's decisions (rule, action, method, detector counts; never the matched text). Another
user's or another tenant's message is the same 404 as an unknown one; a sender's session
opens no admin page."""

from __future__ import annotations

import json
import time

import pytest

from core import quarantine
from core.hashing import sha256_hex
from core.ids import new_id, new_token, queue_id
from core.models import Message, MessageRecipient, OutboxItem, OutboxRecipient, PortalAccess
from core.policy.models import PolicyDecision
from core.portal_message import PortalMessage
from core.services import Services
from portal.sent import pages as sent_pages
from tests.portal.conftest import World, csrf_of
from tests.portal.test_admin import _add_user
from tests.portal.test_admin import sign_in as admin_sign_in

CARD = "4111 1111 1111 1111"  # in every body: the pages must never show it


async def make_sent(
    services: Services,
    tenant_id: str,
    mail_from: str,
    subject: str,
    recipients: list[tuple[str, str, str | None]],  # (rcpt, disposition, outbox state)
    *,
    opened: tuple[str, ...] = (),
    held: tuple[str, ...] = (),
    received_at: float | None = None,
) -> str:
    """A message the gateway processed, with what the pipeline and delivery leave behind."""
    vault = services.vault
    raw_bytes = (
        f"From: {mail_from}\r\nTo: someone@partner.example\r\nSubject: {subject}\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\ncard {CARD}\r\n"
    ).encode()
    async with services.db.session() as s:
        raw = await vault.seal(s, tenant_id, raw_bytes, "raw")
        meta_id = None
        if any(d == "portal" for _r, d, _o in recipients):
            pm = PortalMessage(
                subject=subject,
                sender=mail_from,
                sender_name="",
                to=tuple(r for r, _d, _o in recipients),
                cc=(),
                date="",
                message_id_header="<x@acme.example>",
                text_object_id=None,
                html_object_id=None,
            )
            meta_id = (await vault.seal(s, tenant_id, pm.to_json(), "meta")).id
        msg = Message(
            id=queue_id(),
            tenant_id=tenant_id,
            mail_from=mail_from,
            state="processed",
            raw_object_id=raw.id,
            meta_object_id=meta_id,
            size=len(raw_bytes),
            received_at=received_at or time.time(),
        )
        s.add(msg)
        await s.flush()
        for rcpt, disposition, state in recipients:
            s.add(MessageRecipient(message_id=msg.id, rcpt=rcpt, disposition=disposition,
                                   state="done"))  # fmt: skip
            s.add(
                PolicyDecision(
                    message_id=msg.id,
                    tenant_id=tenant_id,
                    rcpt=rcpt,
                    action="encrypt" if disposition in ("portal", "pgp") else "pass",
                    method="auto",
                    disposition=disposition,
                    rule="cards" if disposition in ("portal", "pgp") else "",
                    explanation=json.dumps(
                        {
                            "rules": [{"rule": "cards", "hit": True}],
                            "detectors": {"credit_card": 2},
                            "limits": "none",
                        }
                    ),
                )
            )
            if disposition == "portal":
                s.add(
                    PortalAccess(
                        id=new_id("a_"),
                        token_hash=sha256_hex(new_token(32)),
                        message_id=msg.id,
                        tenant_id=tenant_id,
                        recipient=rcpt,
                        expires_at=time.time() + 86400,
                        first_opened_at=time.time() - 60 if rcpt in opened else None,
                    )
                )
            if state is not None:
                kind = "notification" if disposition == "portal" else "clear"
                item = OutboxItem(id=new_id("o_"), tenant_id=tenant_id, kind=kind,
                                  message_id=msg.id, mail_from=mail_from, object_id=raw.id,
                                  expires_at=time.time() + 86400)  # fmt: skip
                s.add(item)
                await s.flush()
                reply = "550 5.1.1 no such user" if state == "bounced" else ""
                s.add(OutboxRecipient(outbox_id=item.id, rcpt=rcpt, state=state, attempts=1,
                                      last_reply=reply))  # fmt: skip
        # a bounce notice to the sender: about the message, but not one of its copies
        dsn = OutboxItem(id=new_id("o_"), tenant_id=tenant_id, kind="dsn",
                         message_id=msg.id, mail_from="", object_id=raw.id,
                         expires_at=time.time() + 86400)  # fmt: skip
        s.add(dsn)
        await s.flush()
        s.add(OutboxRecipient(outbox_id=dsn.id, rcpt=mail_from, state="queued"))
        await s.flush()
        if held:
            await quarantine.hold(s, msg.id, tenant_id, list(held), "deals", "keyword: merger")
        await s.commit()
    return msg.id


def setup(world: World) -> dict[str, str]:
    a = world.tenant("Acme", "acme.example")
    b = world.tenant("Beta", "beta.example")
    for tenant, email, role in [
        (a, "sender@acme.example", "sender"),
        (a, "other@acme.example", "sender"),
        (a, "admin@acme.example", "admin"),
        (b, "sender@acme.example", "sender"),  # the same address, another tenant
    ]:
        world.run(_add_user, world.services, tenant, email, role)
    mine = world.run(
        make_sent,
        world.services,
        a,
        "Sender@Acme.Example",
        "Quarterly figures",
        [
            ("bob@partner.example", "portal", "sent"),
            ("carol@partner.example", "pgp", "sent"),
            ("dave@partner.example", "clear", "bounced"),
            ("erin@partner.example", "portal", "queued"),
            ("frank@partner.example", "clear", None),
        ],
        opened=("bob@partner.example",),
        held=("frank@partner.example",),
    )
    older = world.run(make_sent, world.services, a, "sender@acme.example", "Older note",
                      [("bob@partner.example", "tls", "deferred")],
                      received_at=time.time() - 3600)  # fmt: skip
    theirs = world.run(make_sent, world.services, a, "other@acme.example", "Other's plans",
                       [("bob@partner.example", "portal", "sent")])  # fmt: skip
    beta = world.run(make_sent, world.services, b, "sender@acme.example", "Beta secrets",
                     [("bob@partner.example", "portal", "sent")])  # fmt: skip
    return {"a": a, "b": b, "mine": mine, "older": older, "theirs": theirs, "beta": beta}


def sent_sign_in(world: World, email: str, client=None):  # noqa: ANN001, ANN201
    c = client or world.client
    page = c.get("/sent/login")
    assert page.status_code == 200
    r = c.post("/sent/login", data={"csrf": csrf_of(page.text), "email": email})
    assert r.status_code == 200 and "Enter your code" in r.text, r.text
    r = c.post(
        "/sent/verify",
        data={"csrf": csrf_of(r.text), "code": world.latest_code()},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/sent", r.text
    return c


def test_sender_sees_own_messages_with_status(world: World) -> None:
    ids = setup(world)
    assert world.client.get("/sent", follow_redirects=False).headers["location"] == "/sent/login"
    sent_sign_in(world, "sender@acme.example")
    listing = world.client.get("/sent")
    assert listing.status_code == 200
    text = listing.text
    assert text.index("Quarterly figures") < text.index("Older note")  # newest first
    assert "Other&#39;s plans" not in text and "Other's plans" not in text
    assert "Beta secrets" not in text and CARD not in text
    for shown in (
        "sealed to the portal",
        "OpenPGP",
        "TLS only",
        "delivered",
        "bounced",
        "550 5.1.1 no such user",
        "waiting to be sent",
        "retrying (attempt 1)",
        "waiting for review",  # frank: held
        "opened ",
        "not yet opened",  # erin: portal, not opened
    ):
        assert shown in text, shown
    assert f'href="/sent/{ids["mine"]}"' in text

    detail = world.client.get(f"/sent/{ids['mine']}")
    assert detail.status_code == 200
    assert "Quarterly figures" in detail.text
    assert "Sent as sealed to the portal: notification delivered." in detail.text
    assert "Encrypted because rule &#39;cards&#39; found 2 credit card numbers." in detail.text
    assert CARD not in detail.text and "credit_card" not in detail.text
    assert detail.headers["content-security-policy"].endswith("frame-ancestors 'none'")
    assert detail.headers["cache-control"] == "no-store"
    # a message that never went to the portal: its subject comes from the sealed original
    assert "Older note" in world.client.get(f"/sent/{ids['older']}").text


def test_other_users_and_tenants_get_404(world: World) -> None:
    ids = setup(world)
    sent_sign_in(world, "sender@acme.example")
    for message_id in (ids["theirs"], ids["beta"], "q_doesnotexist", "x" * 300):
        r = world.client.get(f"/sent/{message_id}")
        assert r.status_code == 404 and "Other" not in r.text and "Beta secrets" not in r.text


def test_sender_session_opens_no_admin_page(world: World) -> None:
    ids = setup(world)
    sent_sign_in(world, "sender@acme.example")
    for path in ("/admin", "/admin/quarantine", "/admin/keys", f"/admin/messages/{ids['mine']}"):
        assert world.client.get(path, follow_redirects=False).status_code == 404, path
    csrf = csrf_of(world.client.get("/sent").text)
    r = world.client.post("/admin/quarantine/h_x/release", data={"csrf": csrf})
    assert r.status_code == 404
    # the admin door still refuses a sender: no code is mailed
    before = len(world.codes())
    page = world.client.get("/admin/login")
    world.client.post("/admin/login", data={"csrf": csrf_of(page.text),
                                            "email": "sender@acme.example"})  # fmt: skip
    assert len(world.codes()) == before


def test_admin_sees_own_sent_too(world: World) -> None:
    ids = setup(world)
    world.run(make_sent, world.services, ids["a"], "admin@acme.example", "Board memo",
              [("bob@partner.example", "portal", "sent")])  # fmt: skip
    admin_sign_in(world, "admin@acme.example")
    listing = world.client.get("/sent")
    assert listing.status_code == 200 and "Board memo" in listing.text
    assert "Quarterly figures" not in listing.text
    assert world.client.get(f"/sent/{ids['mine']}").status_code == 404
    assert 'href="/sent"' in world.client.get("/admin").text


def test_paging(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = setup(world)
    for n in range(3):
        world.run(make_sent, world.services, ids["a"], "sender@acme.example", f"Note {n}",
                  [("bob@partner.example", "clear", "sent")],
                  received_at=time.time() - 7200 - n)  # fmt: skip
    monkeypatch.setattr(sent_pages, "PAGE_SIZE", 2)
    sent_sign_in(world, "sender@acme.example")
    pages = [world.client.get(f"/sent?page={n}").text for n in (1, 2, 3, 4)]
    assert "Quarterly figures" in pages[0] and "Older note" in pages[0]
    assert 'href="/sent?page=2"' in pages[0]
    assert "Note 0" in pages[1] and "Note 1" in pages[1] and 'href="/sent?page=3"' in pages[1]
    assert "Note 2" in pages[2] and 'href="/sent?page=4"' not in pages[2]
    assert "No more messages" in pages[3]
    assert world.client.get("/sent?page=-1").status_code == 200
    assert world.client.get("/sent?page=abc").status_code == 200


def test_sign_in_door_csrf_and_logout(world: World) -> None:
    setup(world)
    page = world.client.get("/sent/login")
    assert (
        world.client.post("/sent/login", data={"email": "sender@acme.example"}).status_code == 403
    )
    r = world.client.post(
        "/sent/login",
        data={"csrf": csrf_of(page.text), "email": "sender@acme.example"},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert r.status_code == 403
    # an address of no tenant's domain gets the same page and no mail
    r = world.client.post("/sent/login", data={"csrf": csrf_of(page.text),
                                               "email": "nobody@elsewhere.example"})  # fmt: skip
    assert r.status_code == 200 and "Enter your code" in r.text and world.codes() == []
    # a code asked for at /sent cannot be used at /admin, even with the cookie moved over
    world.client.post("/sent/login", data={"csrf": csrf_of(page.text),
                                           "email": "admin@acme.example"})  # fmt: skip
    pending = world.client.cookies.get("__Host-sealmail_sent_pending")
    admin_page = world.client.get("/admin/login")
    code_page = world.client.post(
        "/admin/login", data={"csrf": csrf_of(admin_page.text), "email": "nobody@acme.example"}
    )
    world.client.cookies.delete("__Host-sealmail_admin_pending")
    world.client.cookies.set("__Host-sealmail_admin_pending", pending, domain="testserver")
    wrong_door = world.client.post(
        "/admin/verify",
        data={"csrf": csrf_of(code_page.text), "code": world.latest_code()},
        follow_redirects=False,
    )
    assert wrong_door.headers.get("location") == "/admin/login"
    assert world.client.get("/admin", follow_redirects=False).status_code == 303

    sent_sign_in(world, "sender@acme.example")
    listing = world.client.get("/sent")
    assert world.client.post("/sent/logout", data={"csrf": "forged"}).status_code == 403
    out = world.client.post(
        "/sent/logout", data={"csrf": csrf_of(listing.text)}, follow_redirects=False
    )
    assert out.status_code == 303 and out.headers["location"] == "/sent/login"
    assert world.client.get("/sent", follow_redirects=False).status_code == 303
