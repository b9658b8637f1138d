"""Method ``pdf`` (issue 16) on both databases, through real sockets: SMTP in, the pipeline,
delivery out to the sink. The PDF does not open without the password, and with it yields the
body and the attachments byte for byte; no mail at the sink ever contains the password."""

from __future__ import annotations

import hashlib
import io
import json
import os
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy

import pytest
from pypdf import PdfReader
from pypdf.errors import FileNotDecryptedError
from sqlalchemy import select

from conversations import events
from conversations.models import MessageEvent
from conversations.pdf_passwords import set_password
from conversations.protection import editable
from core.ids import new_id
from core.models import Message, MessageRecipient, RecipientKey, Tenant
from core.policy import parse_policy
from core.policy.store import set_policy
from core.services import Services
from gateway.pipeline.decide import decide
from gateway.worker import run_once
from tests.gateway.conftest import TenantInfo, asend

BOB = "bob@partner.example"
PASSWORD = "correct horse battery staple"
FORCED = "rules:\n  - name: all\n    when: {recipient_domain: partner.example}\n"
FORCED += "    action: encrypt\n    method: pdf\n"
AUTO = "rules:\n  - name: all\n    when: {recipient_domain: '*'}\n    action: encrypt\n"


def _message(subject: str, body: str, files: list[tuple[str, bytes]]) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Alice <alice@acme.example>"
    msg["To"] = BOB
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{new_id()}@acme.example>"
    msg.set_content(body)
    for name, data in files:
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return msg.as_bytes()


async def _policy(services: Services, tenant: TenantInfo, text: str) -> None:
    async with services.db.session() as s:
        await set_policy(s, tenant.id, parse_policy(text), "test")
        await s.commit()


async def _send(gateway, tenant: TenantInfo, raw: bytes, rcpts=(BOB,)) -> None:  # noqa: ANN001
    result = await asend(
        gateway, raw, "alice@acme.example", list(rcpts), login=(tenant.username, tenant.password)
    )
    assert result == {}


def _pdf_of(content: bytes) -> bytes | None:
    parsed = message_from_bytes(content, policy=default_policy)
    for part in parsed.iter_attachments():
        if part.get_content_type() == "application/pdf":
            return part.get_content()
    return None


def _text_of(content: bytes) -> str:
    parsed = message_from_bytes(content, policy=default_policy)
    return parsed.get_body(("plain",)).get_content()


async def test_pdf_forced_first_asks_for_a_password_then_carries_the_pdf(
    gateway, tenant, gw_services, sink
):
    await _policy(gw_services, tenant, FORCED)
    # no PDF password yet: the notice leads to the portal and carries no PDF
    await _send(gateway, tenant, _message("First", "The first secret.\n", []))
    assert await run_once(gw_services) >= 1
    first = (await sink.wait_for(1))[0]
    assert _pdf_of(first.content) is None
    text = _text_of(first.content)
    assert "arrive as password-protected PDFs" in text
    assert "/pdf-password" in text and "https://portal.test/m/" in text
    assert b"The first secret" not in first.content

    # the recipient chooses a password in the portal (here: the function the page calls)
    async with gw_services.db.session() as s:
        await set_password(s, gw_services.vault, tenant.id, "Bob@Partner.example", PASSWORD)
        await s.commit()
    files = [("contract.bin", os.urandom(300_000)), ("notes.txt", b"line one\nline two\n")]
    body = "Dear Bob,\nthe contract is attached. Grüße.\n"
    await _send(gateway, tenant, _message("Contract", body, files))
    assert await run_once(gw_services) >= 1
    mails = await sink.wait_for(2)
    second = mails[1]
    pdf = _pdf_of(second.content)
    assert pdf is not None and pdf.startswith(b"%PDF")
    assert files[0][1][:200] not in pdf and b"the contract is attached" not in pdf

    # without the password it does not open
    locked = PdfReader(io.BytesIO(pdf))
    assert locked.is_encrypted
    assert not locked.decrypt("")
    with pytest.raises(FileNotDecryptedError):
        locked.pages[0].extract_text()
    assert not PdfReader(io.BytesIO(pdf)).decrypt("wrong password")
    encryption = PdfReader(io.BytesIO(pdf)).trailer["/Encrypt"]
    assert encryption["/V"] == 5 and encryption["/R"] == 6  # AES-256

    # with it: the body and the attachments, byte for byte
    reader = PdfReader(io.BytesIO(pdf))
    assert reader.decrypt(PASSWORD)
    page = " ".join(reader.pages[0].extract_text().split())
    assert "Dear Bob," in page and "the contract is attached. Grüße." in page
    assert "Reply securely" in page
    got = {name: datas[0] for name, datas in reader.attachments.items()}
    assert {n: hashlib.sha256(d).hexdigest() for n, d in got.items()} == {
        n: hashlib.sha256(d).hexdigest() for n, d in files
    }
    assert "https://portal.test/m/" in _text_of(second.content)

    # never a password in any mail
    for mail in sink.messages:
        assert PASSWORD.encode() not in mail.content
        assert PASSWORD.replace(" ", "=20").encode() not in mail.content

    async with gw_services.db.session() as s:
        rows = (await s.execute(select(MessageRecipient))).scalars().all()
        assert {r.disposition for r in rows} == {"pdf"}
        evs = (await s.execute(select(MessageEvent).order_by(MessageEvent.id))).scalars().all()
        second_id = (
            await s.execute(select(Message.id).order_by(Message.received_at.desc()).limit(1))
        ).scalar_one()
    kinds = [(e.message_id == second_id, e.kind) for e in evs]
    assert kinds.count((True, events.PDF_SENT)) == 1
    assert kinds.count((False, events.PDF_SENT)) == 0  # the first mail had no PDF
    notified = [e for e in evs if e.kind == events.NOTIFIED]
    assert len(notified) == 2 and all(json.loads(e.detail)["method"] == "pdf" for e in notified)


async def _tenant_row(services: Services, tenant_id: str) -> Tenant:
    async with services.db.session() as s:
        row = await s.get(Tenant, tenant_id)
        assert row is not None
        return row


async def test_auto_with_pdf_when_no_key_keeps_pgp_and_smime(gw_services, tenant):
    await _policy(gw_services, tenant, AUTO)
    async with gw_services.db.session() as s:
        for kind, email in (("pgp", "pgp@x.example"), ("smime", "smime@x.example")):
            s.add(
                RecipientKey(
                    id=new_id("k_"), tenant_id=tenant.id, kind=kind, email=email,
                    fingerprint=new_id(), material=b"-",
                )
            )  # fmt: skip
        await s.commit()
    rcpts = ["pgp@x.example", "smime@x.example", "none@x.example"]
    raw = _message("Hi", "text\n", [])

    async def dispositions() -> dict[str, str]:
        t = await _tenant_row(gw_services, tenant.id)
        async with gw_services.db.session() as s:
            v = await decide(
                gw_services, s, t, raw=raw, mail_from="alice@acme.example", recipients=rcpts,
                trigger_reason=None,
            )  # fmt: skip
        return {r: x.disposition for r, x in v.items()}

    assert await dispositions() == {
        "pgp@x.example": "pgp",
        "smime@x.example": "smime",
        "none@x.example": "portal",
    }
    async with gw_services.db.session() as s:
        (await editable(s, tenant.id)).pdf_when_no_key = True
        await s.commit()
    assert await dispositions() == {
        "pgp@x.example": "pgp",
        "smime@x.example": "smime",
        "none@x.example": "pdf",
    }
    # forced: a PDF whatever keys exist
    await _policy(gw_services, tenant, AUTO + "    method: pdf\n")
    assert set((await dispositions()).values()) == {"pdf"}


async def test_a_message_too_large_to_attach_gets_the_portal_notice(
    gateway, tenant, gw_services, sink, monkeypatch
):
    from branding import pdf_mail

    monkeypatch.setattr(pdf_mail, "MAX_ATTACHED", 100_000)
    await _policy(gw_services, tenant, FORCED)
    async with gw_services.db.session() as s:
        await set_password(s, gw_services.vault, tenant.id, BOB, PASSWORD)
        await s.commit()
    await _send(gateway, tenant, _message("Big", "big\n", [("big.bin", os.urandom(150_000))]))
    assert await run_once(gw_services) >= 1
    mail = (await sink.wait_for(1))[0]
    assert _pdf_of(mail.content) is None
    assert "too large to attach" in " ".join(_text_of(mail.content).split())
    assert PASSWORD.encode() not in mail.content


async def test_the_senders_passphrase_encrypts_the_pdf_then_only_its_hash_stays(
    gateway, tenant, gw_services, sink
):
    """A passphrase registered for the message (as /compose, the API and the add-in do) is
    the PDF's password even when the recipient never chose one; once the PDF is made its
    sealed copy is destroyed and no mail carries it."""
    from conversations import guards
    from conversations.models import MessageGuard
    from core.models import SealedObject

    passphrase = "Harbour-Lights-2291"
    await _policy(gw_services, tenant, FORCED)
    async with gw_services.db.session() as s:
        ref = await guards.register(
            s, gw_services.vault, tenant.id, "alice@acme.example", passphrase, "the usual"
        )
        await s.commit()
    raw = _message("Payslip", "Your payslip is attached.\n", [("payslip.bin", b"\x01" * 5000)])
    raw = f"X-Sealmail-Passphrase-Ref: {ref}\r\n".encode() + raw
    await _send(gateway, tenant, raw)
    assert await run_once(gw_services) >= 1
    [mail] = await sink.wait_for(1)
    assert b"X-Sealmail-Passphrase-Ref" not in mail.content and ref.encode() not in mail.content
    assert passphrase.encode() not in mail.content
    pdf = _pdf_of(mail.content)
    assert pdf is not None
    assert not PdfReader(io.BytesIO(pdf)).decrypt("")
    reader = PdfReader(io.BytesIO(pdf))
    assert reader.decrypt(passphrase)
    assert "Your payslip is attached." in reader.pages[0].extract_text()
    assert hashlib.sha256(reader.attachments["payslip.bin"][0]).hexdigest() == (
        hashlib.sha256(b"\x01" * 5000).hexdigest()
    )
    async with gw_services.db.session() as s:
        [guard] = (await s.execute(select(MessageGuard))).scalars().all()
        assert guard.passphrase_hash.startswith("$argon2") and guard.passphrase_object_id == ""
        kept = (
            (await s.execute(select(SealedObject).where(SealedObject.kind == "passphrase")))
            .scalars()
            .all()
        )
        assert kept and all(o.destroyed_at is not None and o.wrapped_key is None for o in kept)
