"""The recipient's path: link → code by email → verified session → message → attachment."""

from __future__ import annotations

import hashlib
import re
import time
from urllib.parse import unquote

from sqlalchemy import select, text, update

from core.models import AuditEvent, OneTimeCode, PortalAccess, PortalSession
from portal.security import SESSION_COOKIE
from sealmail.schema import metadata

from .conftest import World

BOB = "bob@client.example"
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 4000 + b"\n%%EOF\n"  # ~1 MB, every byte value


def _set_cookie_attrs(header: str) -> set[str]:
    return {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}


def test_full_flow_token_code_message_attachment(world: World) -> None:
    t = world.tenant("Acme", "acme.example", display_name="Acme Bank")
    sealed = world.seal(
        t,
        recipients=[BOB],
        subject="Loan papers for signature",
        attachments=[("Vertrag Müller.pdf", "application/pdf", PDF)],
    )
    token = sealed.tokens[BOB]

    page = world.open_link(token)
    assert page.status_code == 200
    assert "Acme Bank" in page.text
    assert "b***b@client.example" in page.text
    assert BOB not in page.text  # the full address is not shown before verification
    assert "Loan papers" not in page.text  # nor anything of the message
    assert "Send me a code" in page.text

    sent = world.request_code(token)
    assert sent.status_code == 200
    assert 'name="code"' in sent.text and "/verify" in sent.text
    mails = world.codes()
    assert len(mails) == 1
    item, mail = mails[0]
    assert item.kind == "code" and item.tenant_id == t
    assert item.mail_from == world.settings.sender_address
    assert mail["To"] == BOB
    assert mail.get_content_type() == "multipart/alternative"
    code = world.latest_code()
    assert code not in mail["Subject"]
    assert code in mail.get_body(("html",)).get_content()

    verified = world.submit_code(token, code)
    assert verified.status_code == 303
    assert verified.headers["location"] == f"/messages/{sealed.message_id}"
    cookie_header = verified.headers["set-cookie"]
    assert cookie_header.startswith(f"{SESSION_COOKIE}=")
    assert {"secure", "httponly", "path", "samesite"} <= _set_cookie_attrs(cookie_header)
    assert "samesite=lax" in cookie_header.lower() and "path=/;" in cookie_header.lower() + ";"
    assert "domain" not in _set_cookie_attrs(cookie_header)

    page = world.client.get(verified.headers["location"])
    assert page.status_code == 200
    assert "Loan papers for signature" in page.text
    assert "Alice Sender &lt;alice@acme.example&gt;" in page.text
    assert "the figures are attached." in page.text
    assert "Vertrag Müller.pdf" in page.text
    assert hashlib.sha256(PDF).hexdigest() in page.text
    assert page.headers["cache-control"] == "no-store"
    link = re.search(r'href="(/messages/[^"]+/attachments/0)"', page.text)
    assert link

    download = world.client.get(link.group(1))
    assert download.status_code == 200
    assert download.content == PDF
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["content-length"] == str(len(PDF))
    disposition = download.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''" in disposition
    assert unquote(disposition.split("filename*=UTF-8''")[1]) == "Vertrag Müller.pdf"
    assert download.headers["x-content-type-options"] == "nosniff"

    inbox = world.client.get("/inbox")
    assert inbox.status_code == 200
    assert f"/messages/{sealed.message_id}" in inbox.text
    assert "Loan papers for signature" in inbox.text

    async def facts():
        async with world.services.db.session() as s:
            access = (await s.execute(select(PortalAccess))).scalars().one()
            actions = set((await s.execute(select(AuditEvent.action))).scalars().all())
            return access.first_opened_at, actions

    opened, actions = world.run(facts)
    assert opened is not None and opened <= time.time()
    assert {"portal.code.sent", "portal.verified", "portal.attachment.downloaded"} <= actions


def test_no_message_content_in_the_database(world: World) -> None:
    t = world.tenant("Acme", "acme.example")
    secret_subject = "Merger-Codename-Bluebird"
    sealed = world.seal(
        t,
        recipients=[BOB],
        subject=secret_subject,
        text="body-marker-zebra",
        attachments=[("name-marker-quokka.txt", "text/plain", b"file-marker-ibis")],
    )
    world.sign_in(sealed.tokens[BOB])
    assert world.client.get(f"/messages/{sealed.message_id}").status_code == 200
    assert world.client.get(f"/messages/{sealed.message_id}/attachments/0").status_code == 200
    code = world.latest_code()

    async def dump() -> str:
        out = []
        async with world.services.db.session() as s:
            for table in metadata().sorted_tables:
                rows = (await s.execute(text(f'SELECT * FROM "{table.name}"'))).all()  # noqa: S608
                out.append(repr(rows))
        return "\n".join(out)

    everything = world.run(dump)
    for marker in (secret_subject, "body-marker-zebra", "name-marker-quokka", "file-marker-ibis"):
        assert marker not in everything
    assert code not in everything  # codes are stored only as keyed hashes
    assert sealed.tokens[BOB] not in everything  # and so are link tokens


def test_wrong_code_five_times_kills_the_code(world: World) -> None:
    t = world.tenant("Acme", "acme.example")
    token = world.seal(t, recipients=[BOB]).tokens[BOB]
    world.request_code(token)
    good = world.latest_code()
    bad = f"{(int(good) + 1) % 1_000_000:06d}"
    for attempt in range(5):
        r = world.submit_code(token, bad)
        assert r.status_code == 400
        assert SESSION_COOKIE not in r.headers.get("set-cookie", "")
        if attempt < 4:
            assert f"try {4 - attempt} more time" in r.text
    r = world.submit_code(token, good)
    assert r.status_code == 400, "the right code must fail once the code is dead"
    assert "can no longer be used" in r.text
    assert SESSION_COOKIE not in r.headers.get("set-cookie", "")
    assert world.client.get("/inbox").status_code == 401

    # a new code works
    world.request_code(token)
    r = world.submit_code(token, world.latest_code())
    assert r.status_code == 303


def test_code_is_single_use_and_expires(world: World) -> None:
    t = world.tenant("Acme", "acme.example")
    token = world.seal(t, recipients=[BOB]).tokens[BOB]
    world.sign_in(token)
    used = world.latest_code()
    other = world.new_client()
    r = world.submit_code(token, used, client=other)
    assert r.status_code == 400 and "can no longer be used" in r.text

    world.request_code(token, client=other)
    fresh = world.latest_code()

    async def expire() -> None:
        async with world.services.db.session() as s:
            await s.execute(update(OneTimeCode).values(expires_at=time.time() - 1))
            await s.commit()

    world.run(expire)
    r = world.submit_code(token, fresh, client=other)
    assert r.status_code == 400 and "can no longer be used" in r.text


def test_only_the_newest_code_counts(world: World) -> None:
    t = world.tenant("Acme", "acme.example")
    token = world.seal(t, recipients=[BOB]).tokens[BOB]
    world.request_code(token)
    first = world.latest_code()
    world.request_code(token)
    second = world.latest_code()
    if first != second:
        assert world.submit_code(token, first).status_code == 400
    assert world.submit_code(token, second).status_code == 303


def test_random_token_gets_404_and_expired_or_revoked_ones_say_so(world: World) -> None:
    t = world.tenant("Acme", "acme.example")
    expired = world.seal(t, recipients=[BOB], expires_in=-60).tokens[BOB]
    revoked = world.seal(t, recipients=[BOB], revoked=True).tokens[BOB]
    random = "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5"
    responses = [world.open_link(tok) for tok in (random, expired, revoked)]
    assert [r.status_code for r in responses] == [404, 410, 410]
    assert "This link is not valid" in responses[0].text
    assert responses[0].headers.get("set-cookie") is None
    # issue 12: a revoked or expired link says so and who sent it, and offers a new copy
    assert "This message has expired" in responses[1].text
    assert "This message was revoked" in responses[2].text
    for r in responses[1:]:
        assert "Alice Sender &lt;alice@acme.example&gt;" in r.text
        assert "Ask Alice Sender for a new copy" in r.text
        assert "Quarterly figures" not in r.text  # no subject for a bare link
    # the code form is closed to them too
    for tok in (expired, revoked):
        assert world.client.get(f"/m/{tok}/code").status_code == 405


def test_terminated_tenant_links_are_dead(world: World) -> None:
    t = world.tenant("Acme", "acme.example", standing="terminated")
    token = world.seal(t, recipients=[BOB]).tokens[BOB]
    r = world.open_link(token)
    assert r.status_code == 404 and "This link is not valid" in r.text


def test_signed_in_recipient_skips_the_code_for_another_message(world: World) -> None:
    t = world.tenant("Acme", "acme.example")
    first = world.seal(t, recipients=[BOB])
    second = world.seal(t, recipients=[BOB], subject="Second one")
    world.sign_in(first.tokens[BOB])
    r = world.client.get(f"/m/{second.tokens[BOB]}", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == f"/messages/{second.message_id}"


def test_logout_ends_the_session_on_the_server(world: World) -> None:
    t = world.tenant("Acme", "acme.example")
    sealed = world.seal(t, recipients=[BOB])
    world.sign_in(sealed.tokens[BOB])
    stolen = world.client.cookies.get(SESSION_COOKIE)
    page = world.client.get("/inbox")
    r = world.client.post("/logout", data={"csrf": _csrf(page.text)})
    assert r.status_code == 200 and "signed out" in r.text
    assert world.client.get("/inbox").status_code == 401
    thief = world.new_client()
    thief.cookies.set(SESSION_COOKIE, stolen)
    assert thief.get(f"/messages/{sealed.message_id}").status_code == 401

    async def count() -> int:
        async with world.services.db.session() as s:
            return len((await s.execute(select(PortalSession))).scalars().all())

    assert world.run(count) == 0


def test_expired_session_is_refused(world: World) -> None:
    t = world.tenant("Acme", "acme.example")
    sealed = world.seal(t, recipients=[BOB])
    world.sign_in(sealed.tokens[BOB])
    assert world.client.get("/inbox").status_code == 200

    async def age() -> None:
        async with world.services.db.session() as s:
            await s.execute(update(PortalSession).values(created_at=time.time() - 13 * 3600))
            await s.commit()

    world.run(age)
    r = world.client.get(f"/messages/{sealed.message_id}")
    assert r.status_code == 401
    assert "open your message link again" in r.text


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m
    return m.group(1)
