"""Pages that show headers of received mail answer 200 whatever bytes those hold: /sent
lists messages whose subject holds raw 8-bit bytes (a clear copy: read from the sealed
original) or undecodable text stored before headers were cleaned (a portal copy: read from
its sealed summary), and the recipient's message page and inbox show such a summary, with
U+FFFD where bytes could not be decoded and no control characters."""

from __future__ import annotations

import html
import time

import pytest

from core.ids import queue_id
from core.models import Message, MessageRecipient
from core.portal_message import PortalMessage
from core.services import Services
from tests.portal.conftest import World
from tests.portal.test_admin import _add_user
from tests.portal.test_sent import sent_sign_in

pytestmark = pytest.mark.timeout(60)


async def _sent(services: Services, tenant_id: str, raw: bytes, meta: PortalMessage | None) -> str:
    async with services.db.session() as s:
        sealed = await services.vault.seal(s, tenant_id, raw, "raw")
        meta_id = None
        if meta is not None:
            meta_id = (await services.vault.seal(s, tenant_id, meta.to_json(), "meta")).id
        msg = Message(
            id=queue_id(),
            tenant_id=tenant_id,
            mail_from="sender@acme.example",
            state="processed",
            raw_object_id=sealed.id,
            meta_object_id=meta_id,
            size=len(raw),
            received_at=time.time(),
        )
        s.add(msg)
        await s.flush()
        disposition = "clear" if meta is None else "portal"
        s.add(MessageRecipient(message_id=msg.id, rcpt="bob@partner.example",
                               disposition=disposition, state="done"))  # fmt: skip
        await s.commit()
    return msg.id


def test_sent_list_shows_undecodable_subjects(world: World) -> None:
    tenant = world.tenant("Acme", "acme.example")
    world.run(_add_user, world.services, tenant, "sender@acme.example", "sender")
    raw = (
        b"From: sender@acme.example\r\nTo: bob@partner.example\r\n"
        b"Subject: Gr\xfc\xdfe =?utf-8?q?nul=00word?=\r\n\r\nbody\r\n"
    )
    world.run(_sent, world.services, tenant, raw, None)
    old_summary = PortalMessage(
        subject="K\udcf6ln report",  # as an earlier version stored a Latin-1 subject
        sender="sender@acme.example",
        sender_name="",
        to=("bob@partner.example",),
        cc=(),
        date="",
        message_id_header="",
        text_object_id=None,
        html_object_id=None,
    )
    world.run(_sent, world.services, tenant, raw, old_summary)

    sent_sign_in(world, "sender@acme.example")
    listing = world.client.get("/sent")
    assert listing.status_code == 200
    text = html.unescape(listing.text)
    assert "Gr\ufffd\ufffde nul word" in text
    assert "K\ufffdln report" in text


def test_message_page_shows_a_summary_stored_with_raw_bytes(world: World) -> None:
    tenant = world.tenant("Acme", "acme.example")
    bob = "bob@client.example"
    sealed = world.seal(
        tenant,
        recipients=[bob],
        subject="K\udcf6ln\x00report",  # as an earlier version stored them
        sender="J\udcfcrgen <alice@acme.example>",
        text="line one\x00\nline two\n",
        date="Tue, 04 Mar 2025 10:15:00 +0000 (\udcff)\x07",
    )
    world.sign_in(sealed.tokens[bob])
    page = world.client.get(f"/messages/{sealed.message_id}")
    assert page.status_code == 200, page.text
    text = html.unescape(page.text)
    assert "K\ufffdln report" in text and "J\ufffdrgen" in text
    assert "line one\nline two" in text
    assert "\x00" not in text and "\x07" not in text
    inbox = world.client.get("/inbox")
    assert inbox.status_code == 200 and "K\ufffdln report" in html.unescape(inbox.text)
    assert "\x00" not in inbox.text and "\x07" not in inbox.text
