"""/compose on both databases: a sender signed in through /sent writes a secure message; it
is stored sealed as a ``received`` message of origin ``compose`` with every To, Cc and Bcc
address as an envelope recipient, ``X-Sealmail-Encrypt: yes`` and the chosen options as
headers, no Bcc header, attachments byte for byte. Bad input shows the form again with the
reasons; an oversize upload is a readable 413; no CSRF token or a recipient's session sends
nothing."""

from __future__ import annotations

import datetime
import email
import email.policy
import json
import os

import pytest
from sqlalchemy import select

from core.config.settings import Settings
from core.models import AuditEvent, Message, MessageRecipient
from core.services import Services
from tests.conftest import make_settings
from tests.portal.conftest import World, csrf_of
from tests.portal.test_admin import _add_user
from tests.portal.test_sent import sent_sign_in

SENDER = "Sender@Acme.example"
MAX_SIZE = 400_000  # small, so the oversize cases stay quick
MAX_RCPTS = 5
SOON = (datetime.date.today() + datetime.timedelta(days=60)).isoformat()


@pytest.fixture
def settings(tmp_path, db_url: str) -> Settings:  # noqa: ANN001
    return make_settings(
        tmp_path, db_url, smtp_max_message_size=MAX_SIZE, smtp_max_recipients=MAX_RCPTS
    )


def _setup(world: World, **tenant_fields: object) -> str:
    tid = world.tenant("Acme", "acme.example", display_name="Acme Bank", **tenant_fields)
    world.run(_add_user, world.services, tid, SENDER.lower(), "sender")
    sent_sign_in(world, SENDER)
    return tid


def _fields(page: str, **values: str) -> dict[str, str]:
    data = {
        "csrf": csrf_of(page),
        "to": "",
        "cc": "",
        "bcc": "",
        "subject": "Contract draft",
        "text": "Dear Bob,\nthe draft is attached.\n",
        "expires": "",
        "expires_date": "",
        "reply": "all",
        "forward": "yes",
    }
    data.update(values)
    return data


async def _messages(services: Services) -> list[tuple[Message, list[str], bytes]]:
    async with services.db.session() as s:
        rows = (await s.execute(select(Message).order_by(Message.received_at))).scalars().all()
        out = []
        for m in rows:
            rcpts = (
                (
                    await s.execute(
                        select(MessageRecipient.rcpt)
                        .where(MessageRecipient.message_id == m.id)
                        .order_by(MessageRecipient.id)
                    )
                )
                .scalars()
                .all()
            )
            raw = await services.vault.read(s, m.tenant_id, m.raw_object_id)
            out.append((m, list(rcpts), raw))
    return out


async def _audit(services: Services, action: str) -> list[AuditEvent]:
    async with services.db.session() as s:
        stmt = select(AuditEvent).where(AuditEvent.action == action)
        return list((await s.execute(stmt)).scalars().all())


def test_composed_message_is_stored_for_the_pipeline(world: World) -> None:
    tid = _setup(world, receipt_default=True, forward_default="internal")
    page = world.client.get("/compose")
    assert page.status_code == 200
    assert 'name="receipt" type="checkbox" value="yes" checked' in page.text  # tenant default
    assert '<option value="internal" selected>' in page.text
    assert "tells recipients about the message shows the subject" in page.text
    assert "at most 5 in all" in page.text
    pdf = b"%PDF-1.4\n" + os.urandom(120_000)
    notes = "Notizen: Grüße\n".encode()
    r = world.client.post(
        "/compose",
        data=_fields(
            page.text,
            to="Bob Partner <bob@partner.example>, carol@partner.example",
            cc="dave@acme.example\nBOB@partner.example",  # bob twice: one envelope recipient
            bcc="eve@hidden.example",
            expires="7d",
            reply="sender",
            forward="no",
        ),
        files=[
            ("attachments", ("contract.pdf", pdf, "application/pdf")),
            ("attachments", ("C:\\Users\\me\\notes.txt", notes, "text/plain")),
        ],
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    [(msg, rcpts, raw)] = world.run(_messages, world.services)
    assert location == f"/sent/{msg.id}?notice=composed"
    assert msg.tenant_id == tid and msg.state == "received" and msg.origin == "compose"
    assert msg.mail_from == "sender@acme.example"
    assert rcpts == [
        "bob@partner.example",
        "carol@partner.example",
        "dave@acme.example",
        "eve@hidden.example",
    ]
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["From"] == "sender@acme.example"
    assert parsed["To"] == "bob@partner.example, carol@partner.example"
    assert parsed["Cc"] == "dave@acme.example"
    assert "Bcc" not in parsed and b"eve@hidden.example" not in raw
    assert parsed["Subject"] == "Contract draft"
    assert parsed["X-Sealmail-Encrypt"] == "yes"
    assert parsed["X-Sealmail-Expires"] == "7d"
    assert parsed["X-Sealmail-Receipt"] == "no"  # the box was left unchecked: stated
    assert parsed["X-Sealmail-Reply"] == "sender"
    assert parsed["X-Sealmail-Forward"] == "no"
    assert parsed["Message-ID"].endswith("@acme.example>")
    assert "the draft is attached" in parsed.get_body(("plain",)).get_content()
    files = {p.get_filename(): p.get_payload(decode=True) for p in parsed.iter_attachments()}
    assert files == {"contract.pdf": pdf, "notes.txt": notes}

    shown = world.client.get(location)
    assert shown.status_code == 200
    assert "Your secure message is on its way." in shown.text and "Contract draft" in shown.text
    assert "on its way" not in world.client.get(f"/sent/{msg.id}").text

    [event] = world.run(_audit, world.services, "sent.composed")
    assert event.tenant_id == tid and event.actor == "sender@acme.example"
    assert event.subject_id == msg.id
    assert json.loads(event.detail) == {"attachments": 2, "bcc": 1, "cc": 1, "to": 2}
    assert "Contract" not in event.detail and "partner.example" not in event.detail


def test_date_expiry_and_receipt(world: World) -> None:
    _setup(world, hide_subject=True)
    page = world.client.get("/compose")
    assert "see the subject only after they open the message" in page.text
    assert 'name="receipt" type="checkbox" value="yes" aria' in page.text  # unchecked by default
    r = world.client.post(
        "/compose",
        data=_fields(
            page.text,
            to="bob@partner.example",
            expires="date",
            expires_date=SOON,
            receipt="yes",
        ),  # fmt: skip
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    [(_msg, _rcpts, raw)] = world.run(_messages, world.services)
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["X-Sealmail-Expires"] == SOON
    assert parsed["X-Sealmail-Receipt"] == "yes"
    assert parsed.get_content_type() == "text/plain"  # no attachment: one plain part


@pytest.mark.parametrize(
    ("values", "field", "says"),
    [
        ({}, "to", "Add at least one recipient"),
        ({"to": "bob@partner.example, not-an-address"}, "to", "not-an-address"),
        ({"to": "bob@partner.example", "cc": "x@"}, "cc", "is not an email address"),
        ({"to": "bob@partner.example", "bcc": "a%b@partner.example"}, "bcc", "a%b@partner"),
        (
            {
                "to": " ".join(f"r{n}@partner.example" for n in range(MAX_RCPTS)),
                "cc": "z@x.example",
            },
            "to",
            f"at most {MAX_RCPTS} recipients",
        ),
        ({"to": "bob@partner.example", "expires": "date"}, "expires", "enter it in the date"),
        (
            {"to": "bob@partner.example", "expires": "date", "expires_date": "2001-01-01"},
            "expires",
            "Enter a date in the future",
        ),
        ({"to": "bob@partner.example", "expires": "99d"}, "expires", "Choose how long"),
        ({"to": "bob@partner.example", "reply": "everyone"}, "reply", "Choose who"),
        ({"to": "bob@partner.example", "forward": "maybe"}, "forward", "Choose whether"),
        ({"to": "bob@partner.example", "text": "  "}, "text", "Write a message or attach"),
    ],
)
def test_bad_input_shows_the_form_again(
    world: World, values: dict[str, str], field: str, says: str
) -> None:
    _setup(world)
    page = world.client.get("/compose")
    data = _fields(page.text, subject="Kept subject <b>", **values)
    r = world.client.post(
        "/compose",
        data=data,
        files=[("attachments", ("a.txt", b"hello", "text/plain"))] if field != "text" else None,
    )
    assert r.status_code == 422, r.text
    assert 'role="alert"' in r.text and "The message was not sent." in r.text
    assert f'id="{field}-error"' in r.text and says in r.text
    assert 'aria-invalid="true"' in r.text
    assert 'value="Kept subject &lt;b&gt;"' in r.text  # what was typed is kept, escaped
    if field != "text":
        assert "choose it again" in r.text  # the file was not kept, and the page says so
    if values.get("to"):
        assert values["to"].split(",")[0].split()[0] in r.text
    assert world.run(_messages, world.services) == []


def test_oversize_is_refused_readably(world: World) -> None:
    _setup(world)
    page = world.client.get("/compose")
    big = os.urandom(MAX_SIZE + 1024 * 1024 + 10)
    r = world.client.post(
        "/compose",
        data=_fields(page.text, to="bob@partner.example"),
        files=[("attachments", ("big.bin", big, "application/octet-stream"))],
    )
    assert r.status_code == 413 and "too large to send" in r.text and "Start again" in r.text
    # under the body limit, but base64 would take it over the message size
    medium = os.urandom(int(MAX_SIZE * 0.9))
    r = world.client.post(
        "/compose",
        data=_fields(page.text, to="bob@partner.example"),
        files=[("attachments", ("medium.bin", medium, "application/octet-stream"))],
    )
    assert r.status_code == 413 and 'id="attachments-error"' in r.text
    assert "over the limit" in r.text and 'value="bob@partner.example"' not in r.text
    assert "bob@partner.example</textarea>" in r.text

    # a body of no declared length (chunked): cut off while it is read
    def endless_form():  # noqa: ANN202
        yield b'--zzz\r\nContent-Disposition: form-data; name="attachments"; filename="a"\r\n\r\n'
        for _ in range(40):
            yield os.urandom(64 * 1024)

    r = world.client.post(
        "/compose",
        content=endless_form(),
        headers={"content-type": "multipart/form-data; boundary=zzz"},
    )
    assert r.status_code == 413 and "too large to send" in r.text
    assert world.run(_messages, world.services) == []


def test_csrf_and_origin_are_checked(world: World) -> None:
    _setup(world)
    page = world.client.get("/compose")
    data = _fields(page.text, to="bob@partner.example")
    r = world.client.post("/compose", data={**data, "csrf": "forged"})
    assert r.status_code == 403 and "This form has expired" in r.text
    r = world.client.post("/compose", data={k: v for k, v in data.items() if k != "csrf"})
    assert r.status_code == 403
    r = world.client.post("/compose", data=data, headers={"origin": "https://evil.example"})
    assert r.status_code == 403
    assert world.run(_messages, world.services) == []


def test_only_signed_in_senders(world: World) -> None:
    tid = world.tenant("Acme", "acme.example")
    r = world.client.get("/compose", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/sent/login"
    # a recipient's verified session is not a sender's
    sealed = world.seal(tid, recipients=["bob@partner.example"])
    world.sign_in(sealed.tokens["bob@partner.example"])
    r = world.client.get("/compose", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/sent/login"
    r = world.client.post(
        "/compose",
        data={"to": "victim@partner.example", "text": "hi", "csrf": "x"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/sent/login"

    async def count() -> int:
        async with world.services.db.session() as s:
            return len((await s.execute(select(Message))).scalars().all())

    assert world.run(count) == 1  # only the sealed one


def test_sent_list_links_to_compose(world: World) -> None:
    _setup(world)
    page = world.client.get("/sent")
    assert 'href="/compose"' in page.text and "Write a secure message" in page.text
