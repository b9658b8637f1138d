"""The recipient's PDF password and "Send me this message as a PDF" (issue 16), and the
admin's "PDF when the recipient has no key", on both databases."""

from __future__ import annotations

import email
import email.policy
import hashlib
import io

from pypdf import PdfReader
from sqlalchemy import select

from conversations import events
from conversations.models import MessageEvent, PdfPassword
from conversations.protection import settings_of
from core.models import AuditEvent, OutboxItem, SealedObject
from core.services import Services
from tests.portal.conftest import World, csrf_of
from tests.portal.test_admin import _add_user
from tests.portal.test_admin import sign_in as admin_sign_in

BOB = "bob@client.example"
PASSWORD = "plum orchard 1987 lantern"


async def _pdf_mails(services: Services, tenant_id: str) -> list[bytes]:
    async with services.db.session() as s:
        items = (
            (await s.execute(select(OutboxItem).where(OutboxItem.kind == "pdf"))).scalars().all()
        )
        return [await services.vault.read(s, tenant_id, i.object_id) for i in items]


async def _rows(services: Services, model: type) -> list:
    async with services.db.session() as s:
        return list((await s.execute(select(model))).scalars().all())


async def _protection(services: Services, tenant_id: str) -> bool:
    async with services.db.session() as s:
        return (await settings_of(s, tenant_id)).pdf_when_no_key


async def _all_stored(services: Services) -> bytes:
    """Every row of the tables that could hold the password, as text."""
    async with services.db.session() as s:
        rows = [
            *(await s.execute(select(PdfPassword))).scalars().all(),
            *(await s.execute(select(SealedObject))).scalars().all(),
            *(await s.execute(select(AuditEvent))).scalars().all(),
            *(await s.execute(select(MessageEvent))).scalars().all(),
        ]
    return repr([vars(r) for r in rows]).encode()


def test_choose_a_password_then_send_this_message_as_pdf(world: World) -> None:
    tenant = world.tenant("Acme", "acme.example")
    data = b"%PDF-1.4 the signed contract " + bytes(range(256)) * 40
    sealed = world.seal(
        tenant, recipients=[BOB], attachments=[("contract.pdf", "application/pdf", data)]
    )
    world.sign_in(sealed.tokens[BOB])
    page = world.client.get(f"/messages/{sealed.message_id}")
    assert page.status_code == 200
    assert "Send me this message as a PDF" not in page.text  # no password yet

    form = world.client.get(f"/pdf-password?m={sealed.message_id}")
    assert form.status_code == 200 and "at least 10 characters" in form.text.lower()
    csrf = csrf_of(form.text)

    def post(password: str, again: str | None = None):  # noqa: ANN202
        return world.client.post(
            "/pdf-password",
            data={
                "csrf": csrf,
                "m": sealed.message_id,
                "password": password,
                "again": password if again is None else again,
            },
            follow_redirects=False,
        )

    assert "at least 10" in post("short").text
    assert "email address" in post(BOB).text
    assert "not the same" in post(PASSWORD, PASSWORD + "x").text
    done = post(PASSWORD)
    assert done.status_code == 303
    assert done.headers["location"] == f"/messages/{sealed.message_id}?notice=pdf_password"
    assert PASSWORD.encode() not in world.run(_all_stored, world.services)
    assert len(world.run(_rows, world.services, PdfPassword)) == 1

    page = world.client.get(f"/messages/{sealed.message_id}")
    assert "Send me this message as a PDF" in page.text
    sent = world.client.post(
        f"/messages/{sealed.message_id}/pdf",
        data={"csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert sent.status_code == 303 and "notice=pdf_sent" in sent.headers["location"]
    assert (
        world.client.post(
            f"/messages/{sealed.message_id}/pdf", data={"csrf": "wrong"}, follow_redirects=False
        ).status_code
        == 403
    )

    mails = world.run(_pdf_mails, world.services, tenant)
    assert len(mails) == 1 and PASSWORD.encode() not in mails[0]
    parsed = email.message_from_bytes(mails[0], policy=email.policy.default)
    assert parsed["To"] == BOB
    pdf = next(p for p in parsed.iter_attachments() if p.get_content_type() == "application/pdf")
    reader = PdfReader(io.BytesIO(pdf.get_content()))
    assert not reader.decrypt("")
    reader = PdfReader(io.BytesIO(pdf.get_content()))
    assert reader.decrypt(PASSWORD)
    assert "the figures are attached" in reader.pages[0].extract_text()
    (got,) = reader.attachments["contract.pdf"]
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()
    kinds = [e.kind for e in world.run(_rows, world.services, MessageEvent)]
    assert kinds.count(events.PDF_SENT) == 1


def test_another_session_cannot_send_or_set(world: World) -> None:
    tenant = world.tenant("Acme", "acme.example")
    sealed = world.seal(tenant, recipients=[BOB])
    assert world.client.get("/pdf-password", follow_redirects=False).status_code in (303, 401)
    r = world.client.post(
        f"/messages/{sealed.message_id}/pdf", data={"csrf": "x"}, follow_redirects=False
    )
    assert r.status_code in (303, 401, 403)
    assert world.run(_pdf_mails, world.services, tenant) == []


def test_admin_saves_pdf_when_no_key(world: World) -> None:
    tenant = world.tenant("Acme", "acme.example")
    world.run(_add_user, world.services, tenant, "admin@acme.example", "admin")
    admin_sign_in(world, "admin@acme.example")
    page = world.client.get("/admin/settings")
    assert "PDF when the recipient has no OpenPGP key or S/MIME certificate" in page.text
    r = world.client.post(
        "/admin/settings/pdf",
        data={"csrf": csrf_of(page.text), "pdf_when_no_key": "yes"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and "done=saved" in r.headers["location"]
    assert world.run(_protection, world.services, tenant) is True
    page = world.client.get("/admin/settings")
    assert "Everyone else gets the message by email as a PDF" in page.text
    r = world.client.post(
        "/admin/settings/pdf", data={"csrf": csrf_of(page.text)}, follow_redirects=False
    )
    assert world.run(_protection, world.services, tenant) is False
