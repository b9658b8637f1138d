"""``/verify`` (issue 13, item 6) and the plain-HTTP explanation (item 7), on both databases:
a real reference is genuine and says only sender, tenant and date; 1,000 random ones are
unknown; a client past the limit is stopped with a 429 page."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from branding import references
from branding.models import NoticeReference
from core.config.settings import Settings
from core.services import Services
from portal.app import create_app
from portal.reader.verify import VERIFY_LIMIT
from tests.helpers.pages import ARGS, CHROMIUM, look_at
from tests.portal.conftest import make_tenant, seal_message

BASE = "https://testserver"
BOB = "bob@client.example"


@pytest.fixture
def proxied(settings: Settings, services: Services) -> Iterator[TestClient]:
    """The portal behind a trusted proxy on 127.0.0.1, so each request names its client."""
    trusting = dataclasses.replace(settings, portal_trusted_proxies=("127.0.0.1/32",))
    with TestClient(
        create_app(trusting, services), base_url=BASE, client=("127.0.0.1", 40000)
    ) as client:
        client.services = services  # type: ignore[attr-defined]
        yield client
        client.portal.call(services.db.dispose)


def _notice(client: TestClient, **fields: Any) -> tuple[str, str]:
    """A tenant, a sealed message and the reference its notice would carry; the code and
    the tenant id. Made on the client's own loop (the database's connections live there)."""
    services: Services = client.services  # type: ignore[attr-defined]

    async def run() -> tuple[str, str]:
        t = await make_tenant(services, "Acme", "acme.example", **fields)
        sealed = await seal_message(services, t, recipients=[BOB], subject="Merger terms")
        async with services.db.session() as s:
            code = await references.issue(s, t, sealed.message_id, BOB)
            await s.commit()
        return code, t

    assert client.portal is not None
    return client.portal.call(run)


def _check(client: TestClient, code: str, client_ip: str = "198.51.100.7") -> tuple[int, str]:
    r = client.post("/verify", data={"code": code}, headers={"X-Forwarded-For": client_ip})
    return r.status_code, r.text


def test_a_real_reference_is_genuine_and_says_no_more(proxied: TestClient) -> None:
    code, _t = _notice(proxied, display_name="Acme Bank")
    assert references.canonical(code) != code and len(references.canonical(code)) == 11

    # stored hashed: the code itself is nowhere in the table
    async def rows() -> list[NoticeReference]:
        async with proxied.services.db.session() as s:  # type: ignore[attr-defined]
            return list((await s.execute(select(NoticeReference))).scalars())

    assert proxied.portal is not None
    stored = proxied.portal.call(rows)
    assert [r.code_hash for r in stored] == [references.code_hash(code)]
    assert code not in repr([vars(r) for r in stored])

    for typed in (code, code.lower(), code.replace("-", " "), f"  {code}  "):
        status, page = _check(proxied, typed)
        assert status == 200 and "This notice is genuine" in page, typed
    assert "Acme Bank" in page and "alice@acme.example" in page
    assert "Merger terms" not in page and BOB not in page


def test_a_thousand_random_references_are_unknown(proxied: TestClient) -> None:
    real, _t = _notice(proxied)
    unknown = 0
    for n in range(1000):
        code = references.new_code()
        assert code != real
        status, page = _check(proxied, code, client_ip=f"10.{n // 250}.{n % 250}.1")
        assert status == 200, page
        unknown += "We do not know this reference" in page
    assert unknown == 1000
    # garbage is unknown too, not an error
    for junk in ("x", "1" * 40, "<script>", "ÄÖÜ-ß"):
        status, page = _check(proxied, junk)
        assert status == 200 and "We do not know this reference" in page
        assert "<script>" not in page
    status, page = _check(proxied, "")
    assert status == 400 and "Please type the reference" in page


def test_a_client_past_the_limit_is_stopped(proxied: TestClient) -> None:
    real, _t = _notice(proxied)
    for _ in range(VERIFY_LIMIT):
        assert _check(proxied, references.new_code(), "203.0.113.5")[0] == 200
    status, page = _check(proxied, real, "203.0.113.5")
    assert status == 429 and "Too many checks" in page and "genuine" not in page
    # another client is not affected
    status, page = _check(proxied, real, "203.0.113.6")
    assert status == 200 and "This notice is genuine" in page


def test_a_form_posted_over_plain_http_says_so(settings: Settings, services: Services) -> None:
    for base, expected in (
        ("http://portal.example.net", "This site must be opened over HTTPS"),
        ("https://portal.example.net", "This form has expired"),
        ("http://127.0.0.1:8025", "This form has expired"),  # loopback is a secure context
    ):
        with TestClient(create_app(settings, services), base_url=base) as client:
            r = client.post("/admin/verify", data={"code": "123456"})
            assert r.status_code == 403 and expected in r.text, (base, r.text[:300])
            client.portal.call(services.db.dispose)


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_verify_pages_in_a_browser(served) -> None:  # noqa: ANN001
    from playwright.sync_api import sync_playwright

    base, _settings = served
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
            page.goto(f"{base}/")
            page.click("a[href='/verify']")
            page.wait_for_url(f"{base}/verify")
            look_at(page, "verify-form", group="reader")
            page.fill("#code", "ABCD-EFGH-JKM")
            page.click("button[type=submit]")
            page.wait_for_selector("text=We do not know this reference")
            look_at(page, "verify-unknown", group="reader")
        finally:
            browser.close()


def test_a_tenant_host_signs_in_only_its_own_people(settings: Settings, services: Services) -> None:
    """On Acme's own portal host, Beta's admin gets no code; Acme's does, and its session
    is not accepted on Beta's host."""
    from core.accounts.tenant_settings import update_tenant
    from core.accounts.tenants import get_tenant
    from core.accounts.users import add_user
    from tests.portal.conftest import code_mails
    from tests.portal.test_admin import ask_code

    app = create_app(settings, services)
    with TestClient(app, base_url="https://secure.acme.example") as acme_host:

        async def seed() -> None:
            a = await make_tenant(services, "Acme", "acme.example")
            b = await make_tenant(services, "Beta", "beta.example")
            async with services.db.session() as s:
                await update_tenant(
                    s, await get_tenant(s, a), "t", portal_host="secure.acme.example"
                )
                await update_tenant(
                    s, await get_tenant(s, b), "t", portal_host="secure.beta.example"
                )
                await add_user(s, await get_tenant(s, a), "admin@acme.example", "admin")
                await add_user(s, await get_tenant(s, b), "admin@beta.example", "admin")
                await s.commit()

        assert acme_host.portal is not None
        acme_host.portal.call(seed)
        sent = lambda: acme_host.portal.call(code_mails, services)  # noqa: E731
        assert ask_code(acme_host, "admin@beta.example").status_code == 200
        assert not [m for _i, m in sent() if "admin@beta.example" in str(m["To"])]
        assert ask_code(acme_host, "admin@acme.example").status_code == 200
        mails = [m for _i, m in sent() if "admin@acme.example" in str(m["To"])]
        assert len(mails) == 1
        acme_host.portal.call(services.db.dispose)
