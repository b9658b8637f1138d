"""Sender-set passphrases and step-up (issue 16), on both databases, through the real
compose page, API and add-in endpoint, the real pipeline and the recipient's pages.

A passphrase is needed on top of the code, is kept only as a hash (the database and every
mail are scanned for it), travels as a reference in the message, and is rate-limited; a
tenant requiring step-up for payment card numbers refuses a code-only session for such a
message (every content route) and opens it for a passkey session; a reference that cannot
be bound fails safe to step-up."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import select, text, update

import sealmail.schema  # noqa: F401 - every table, for the scan
from conversations.models import MessageEvent, MessageGuard, TenantProtection
from core.evidence.models import EvidenceEntry
from core.hashing import sha256_hex
from core.models import Base, Message, OutboxItem, PortalAccess, PortalSession, SealedObject
from core.services import Services
from gateway.pipeline.runner import process_pending
from portal.models import AddinToken
from tests.portal.conftest import Browser, World, csrf_of
from tests.portal.test_admin import _add_user, _api_key
from tests.portal.test_admin import sign_in as admin_sign_in
from tests.portal.test_sent import sent_sign_in

SENDER = "alice@acme.example"
PASSPHRASE = "Blue-Harbour-7731"
CARD = "Card 4111 1111 1111 1111, expiry 12/29."


def _setup(world: World) -> str:
    tid = world.tenant("Acme", "acme.example", display_name="Acme Bank")
    world.run(_add_user, world.services, tid, SENDER, "sender")
    world.run(_add_user, world.services, tid, "boss@acme.example", "admin")
    return tid


def _compose(world: World, **values: str) -> str:
    page = world.client.get("/compose")
    assert page.status_code == 200, page.text
    data = {
        "csrf": csrf_of(page.text),
        "to": "bob@partner.example",
        "subject": "Figures",
        "text": "Hello Bob,\nhere they are.\n",
        "expires": "",
        "reply": "all",
        "forward": "yes",
        **values,
    }
    r = world.client.post("/compose", data=data, follow_redirects=False)
    assert r.status_code == 303, r.text
    return r.headers["location"].split("?")[0].rsplit("/", 1)[1]


async def _process(services: Services) -> None:
    while await process_pending(services):
        pass


async def _link(services: Services, message_id: str, rcpt: str) -> str:
    """A known link token for the recipient's access (the notice holds the real one)."""
    token = f"tok-{message_id}-{rcpt}"
    async with services.db.session() as s:
        await s.execute(
            update(PortalAccess)
            .where(PortalAccess.message_id == message_id, PortalAccess.recipient == rcpt)
            .values(token_hash=sha256_hex(token))
        )
        await s.commit()
    return token


async def _rows(services: Services, model: Any, *where: Any) -> list[Any]:
    async with services.db.session() as s:
        return list((await s.execute(select(model).where(*where))).scalars().all())


async def _every_text(services: Services) -> str:
    """Every value of every table, as text: what a database dump would show."""
    out = []
    async with services.db.session() as s:
        for table in Base.metadata.sorted_tables:
            dump = text(f'SELECT * FROM "{table.name}"')  # noqa: S608 - our own table names
            for row in (await s.execute(dump)).all():
                out.extend(str(v) for v in row)
    return "\n".join(out)


async def _every_mail(services: Services) -> list[bytes]:
    async with services.db.session() as s:
        items = (await s.execute(select(OutboxItem))).scalars().all()
        return [await services.vault.read(s, i.tenant_id or "", i.object_id) for i in items]


def _recipient(world: World, token: str) -> Browser:
    b = world.new_client()
    world.sign_in(token, b)
    return b


def test_a_passphrase_is_needed_on_top_of_the_code_and_kept_only_hashed(world: World) -> None:
    _setup(world)
    sent_sign_in(world, SENDER)
    page = world.client.get("/compose")
    assert 'name="passphrase"' in page.text and "never send it" in page.text
    # checked like the rest of the form, and never shown back
    r = world.client.post(
        "/compose",
        data={
            "csrf": csrf_of(page.text),
            "to": "bob@partner.example",
            "subject": "x",
            "text": "y",
            "expires": "",
            "reply": "all",
            "forward": "yes",
            "passphrase": "short",
        },
    )
    assert r.status_code == 422 and "at least 8 characters" in r.text
    assert "short" not in r.text.split('name="passphrase"')[1].split(">")[0]
    mid = _compose(
        world,
        to="bob@partner.example, carol@partner.example",
        passphrase=PASSPHRASE,
        passphrase_hint="the harbour we met at",
    )
    world.run(_process, world.services)
    [msg] = world.run(_rows, world.services, Message, Message.id == mid)
    assert msg.state == "processed" and msg.disposition == "portal"
    [guard] = world.run(_rows, world.services, MessageGuard, MessageGuard.message_id == mid)
    assert guard.passphrase_hash.startswith("$argon2") and not guard.step_up
    assert guard.passphrase_object_id == ""  # no PDF to make: the sealed copy is gone
    assert (
        world.run(_rows, world.services, MessageGuard, MessageGuard.message_id.like("pp_%")) == []
    )
    destroyed = world.run(_rows, world.services, SealedObject, SealedObject.kind == "passphrase")
    assert destroyed and all(o.destroyed_at is not None for o in destroyed)
    assert PASSPHRASE not in world.run(_every_text, world.services)
    mails = world.run(_every_mail, world.services)
    assert mails and not any(PASSPHRASE.encode() in m for m in mails)

    mine = world.client.get(f"/sent/{mid}")
    assert "Recipients need the passphrase you set" in mine.text
    assert "the harbour we met at" in mine.text and PASSPHRASE not in mine.text
    bob = _recipient(world, world.run(_link, world.services, mid, "bob@partner.example"))
    locked = bob.get(f"/messages/{mid}")
    assert locked.status_code == 403
    assert "protected this message with a passphrase" in locked.text
    assert "the harbour we met at" in locked.text and "here they are" not in locked.text
    for path in ("download.eml", "download.pdf", "thread.eml", "reply"):
        r = bob.get(f"/messages/{mid}/{path}")
        assert r.status_code == 403 and "here they are" not in r.text, path
    csrf = csrf_of(locked.text)
    wrong = bob.post(f"/messages/{mid}/unlock", data={"csrf": csrf, "passphrase": "Blue-Harbour"})
    assert wrong.status_code == 400 and "not right" in wrong.text
    right = bob.post(
        f"/messages/{mid}/unlock", data={"csrf": csrf, "passphrase": PASSPHRASE},
        follow_redirects=False,
    )  # fmt: skip
    assert right.status_code == 303
    opened = bob.get(f"/messages/{mid}")
    assert opened.status_code == 200 and "here they are" in opened.text
    assert bob.get(f"/messages/{mid}/download.eml").status_code == 200
    events = world.run(_rows, world.services, MessageEvent, MessageEvent.message_id == mid)
    assert [e.recipient for e in events if e.kind == "unlocked"] == ["bob@partner.example"]
    world.run(_chain, world.services)
    logged = world.run(_rows, world.services, EvidenceEntry, EvidenceEntry.message_id == mid)
    assert "unlocked" in [e.kind for e in logged]

    # five wrong tries an hour for one message and address, then none at all
    carol = _recipient(world, world.run(_link, world.services, mid, "carol@partner.example"))
    csrf = csrf_of(carol.get(f"/messages/{mid}").text)
    for _ in range(5):
        r = carol.post(f"/messages/{mid}/unlock", data={"csrf": csrf, "passphrase": "nope-nope"})
        assert r.status_code == 400
    r = carol.post(f"/messages/{mid}/unlock", data={"csrf": csrf, "passphrase": PASSPHRASE})
    assert r.status_code == 429 and "too many wrong tries" in r.text
    assert carol.get(f"/messages/{mid}").status_code == 403
    # no CSRF token: nothing is tried
    assert bob.post(f"/messages/{mid}/unlock", data={"passphrase": PASSPHRASE}).status_code == 403


async def _chain(services: Services) -> None:
    from core.evidence.log import chain_all

    await chain_all(services)


async def _set_step_up(services: Services, tid: str, **fields: Any) -> None:
    async with services.db.session() as s:
        s.add(TenantProtection(tenant_id=tid, updated_at=time.time(), **fields))
        await s.commit()


async def _make_passkey_session(services: Services) -> None:
    async with services.db.session() as s:
        await s.execute(
            update(PortalSession).where(PortalSession.kind == "recipient").values(factor="passkey")
        )
        await s.commit()


def test_step_up_for_card_numbers_refuses_the_code_only_path(world: World) -> None:
    tid = _setup(world)
    world.run(
        _set_step_up, world.services, tid, step_up="detectors", step_up_detectors="credit_card"
    )
    sent_sign_in(world, SENDER)
    with_card = _compose(world, text=f"Hello Bob,\n{CARD}\n")
    plain = _compose(world, text="Hello Bob,\nno numbers here.\n")
    world.run(_process, world.services)
    [guard] = world.run(_rows, world.services, MessageGuard)
    assert guard.message_id == with_card and guard.step_up
    assert guard.step_up_reason == "it contains a payment card number"

    bob = _recipient(world, world.run(_link, world.services, with_card, "bob@partner.example"))
    world.run(_link, world.services, plain, "bob@partner.example")
    refused = bob.get(f"/messages/{with_card}")
    assert refused.status_code == 403
    assert "confirm with a passkey" in refused.text and "payment card number" in refused.text
    assert "4111" not in refused.text
    for path in ("body", "download.eml", "download.pdf", "thread.pdf", "forward", "attachments/0"):
        r = bob.get(f"/messages/{with_card}/{path}")
        assert r.status_code == 403 and "4111" not in r.text, path
    assert bob.get(f"/messages/{plain}").status_code == 200  # nothing found: the code is enough
    # the same session after a passkey confirmed it
    world.run(_make_passkey_session, world.services)
    opened = bob.get(f"/messages/{with_card}")
    assert opened.status_code == 200 and "4111 1111 1111 1111" in opened.text
    assert bob.get(f"/messages/{with_card}").status_code == 200
    events = world.run(_rows, world.services, MessageEvent, MessageEvent.kind == "unlocked")
    assert [(e.message_id, e.recipient, json.loads(e.detail)) for e in events] == [
        (with_card, "bob@partner.example", {"how": "passkey"})
    ]  # once, however often it is read
    timeline = world.client.get(f"/sent/{with_card}").text
    assert "bob@partner.example unlocked it with a passkey." in timeline


def test_admin_chooses_step_up_in_settings(world: World) -> None:
    tid = _setup(world)
    admin = world.new_client()
    admin_sign_in(world, "boss@acme.example", admin)
    page = admin.get("/admin/settings")
    assert "Extra proof before a message opens" in page.text
    assert "The emailed code is enough" in page.text
    csrf = csrf_of(page.text)
    r = admin.post(
        "/admin/settings/protection", data={"csrf": csrf, "step_up": "detectors"},
        follow_redirects=True,
    )  # fmt: skip
    assert "choose at least one detector" in r.text
    r = admin.post(
        "/admin/settings/protection",
        data={"csrf": csrf, "step_up": "detectors", "step_up_detector": ["credit_card", "iban"]},
        follow_redirects=True,
    )
    assert r.status_code == 200 and "Settings saved." in r.text
    assert "when a message contains payment card numbers, bank account numbers" in r.text
    [row] = world.run(_rows, world.services, TenantProtection, TenantProtection.tenant_id == tid)
    assert (row.step_up, row.step_up_detectors) == ("detectors", "credit_card,iban")
    bad = admin.post("/admin/settings/protection", data={"csrf": csrf, "step_up": "sometimes"})
    assert bad.status_code == 400


def test_api_and_addin_passphrases_and_a_reference_that_cannot_be_bound(world: World) -> None:
    tid = _setup(world)
    other = world.tenant("Other", "other.example")
    key = world.run(_api_key, world.services, tid)
    auth = {"Authorization": f"Bearer {key}"}
    r = world.client.post(
        "/api/v1/messages",
        json={"from": SENDER, "to": "bob@partner.example", "subject": "API", "text": "via api",
              "passphrase": "bob@partner.example"},
        headers=auth,
    )  # fmt: skip
    assert r.status_code == 422 and "recipient's address" in r.json()["error"]
    r = world.client.post(
        "/api/v1/messages",
        json={"from": SENDER, "to": "bob@partner.example", "subject": "API", "text": "via api",
              "passphrase": PASSPHRASE},
        headers=auth,
    )  # fmt: skip
    assert r.status_code == 202, r.text
    api_mid = r.json()["id"]

    token = world.run(_addin_token, world.services, tid, SENDER)
    stranger = world.run(_addin_token, world.services, other, "eve@other.example")
    got = world.client.post(
        "/addin/api/passphrase",
        json={"passphrase": PASSPHRASE, "hint": "as before"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert got.status_code == 200 and got.json()["ref"].startswith("pp_")
    ref = got.json()["ref"]
    leaked = world.client.post(
        "/addin/api/passphrase",
        json={"passphrase": PASSPHRASE, "hint": f"it is {PASSPHRASE}"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert leaked.status_code == 422
    assert (
        world.client.post("/addin/api/passphrase", json={"passphrase": PASSPHRASE}).status_code
        == 401
    )
    eve_ref = world.client.post(
        "/addin/api/passphrase",
        json={"passphrase": PASSPHRASE},
        headers={"Authorization": f"Bearer {stranger}"},
    ).json()["ref"]
    # the add-in's message arrives by SMTP with the reference; another tenant's reference
    # is refused and the message fails safe to step-up
    good = world.run(_arrive, world.services, tid, {"X-Sealmail-Passphrase-Ref": ref})
    stolen = world.run(_arrive, world.services, tid, {"X-Sealmail-Passphrase-Ref": eve_ref})
    world.run(_process, world.services)
    guards = {g.message_id: g for g in world.run(_rows, world.services, MessageGuard)}
    assert guards[api_mid].passphrase_hash and not guards[api_mid].step_up
    assert guards[good].passphrase_hash and guards[good].passphrase_hint == "as before"
    assert not guards[stolen].passphrase_hash and guards[stolen].step_up
    assert "could not be attached" in guards[stolen].step_up_reason
    assert eve_ref in guards  # still waiting for its own sender's message
    mails = world.run(_every_mail, world.services)
    assert not any(PASSPHRASE.encode() in m or ref.encode() in m for m in mails)
    assert PASSPHRASE not in world.run(_every_text, world.services)


async def _addin_token(services: Services, tid: str, email: str) -> str:
    token = f"addin-{tid}-{email}"
    async with services.db.session() as s:
        s.add(
            AddinToken(
                token_hash=sha256_hex(token), tenant_id=tid, email=email,
                expires_at=time.time() + 3600,
            )
        )  # fmt: skip
        await s.commit()
    return token


async def _arrive(services: Services, tid: str, headers: dict[str, str]) -> str:
    """A message as intake stores it (the add-in's mail through Exchange)."""
    from conversations.submit import submit

    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    raw = (
        f"From: {SENDER}\r\nTo: bob@partner.example\r\nSubject: From Outlook\r\n"
        f"X-Sealmail-Encrypt: yes\r\n{head}\r\nHello from Outlook.\r\n"
    ).encode()
    return await submit(
        services, tid, SENDER, ["bob@partner.example"], iter([raw]), origin="compose"
    )
