"""An account contact resets their support PIN in a real browser (Debian's Chromium,
headless): address → emailed code (read from the outbox) → new PIN shown once; the new PIN
matches at the desk, the old one no longer does."""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from core.services import Services
from support import agents, pins
from tests.helpers.pages import ARGS, CHROMIUM
from tests.portal.test_support import mails_to, text_of
from tests.support.test_pins import KEY, give_pin, make_account

ANN = "ann@acme.test"
T = TypeVar("T")


def _with_services(settings: Any, fn: Callable[[Services], Awaitable[T]]) -> T:
    async def run() -> T:
        services = Services.open(settings)
        try:
            return await fn(services)
        finally:
            await services.close()

    # sync Playwright keeps an event loop on this thread: run ours on another
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


async def _check(services: Services, pin: str) -> str:
    async with services.db.session() as s:
        r = await pins.check_pin(s, KEY, ANN, pin, agent="test")
        await s.commit()
    return r.result.value


async def _seed(services: Services) -> tuple[str, str]:
    _, cid = await make_account(services, "Acme", "acme.test", ANN)
    return cid, await give_pin(services, cid)


async def _agent(services: Services) -> str:
    async with services.db.session() as s:
        _row, key = await agents.add_agent(s, "desk@operator.test")
        await s.commit()
    return key


async def _pin_code(services: Services) -> str:
    kind, mail = (await mails_to(services, ANN))[-1]
    assert kind == "code"
    m = re.search(r"\b(\d{6})\b", text_of(mail))
    assert m
    return m.group(1)


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_contact_resets_pin_in_a_real_browser(served, tmp_path: Path) -> None:  # noqa: ANN001
    from playwright.sync_api import sync_playwright

    base, settings = served
    _cid, old = _with_services(settings, _seed)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_context(viewport={"width": 900, "height": 900}).new_page()
            page.goto(f"{base}/pin")
            page.fill("#email", ANN)
            page.click("button:has-text('Send me a code')")
            page.wait_for_selector("#code")
            page.fill("#code", _with_services(settings, _pin_code))
            page.click("button:has-text('Continue')")
            page.wait_for_url(f"{base}/pin")
            assert "Acme Ltd" in page.inner_text("main")
            assert page.inner_text(".pin-state") == "set"
            page.click("button:has-text('Give me a new PIN')")
            page.wait_for_selector("#pin")
            new = page.inner_text("#pin").strip()
            assert re.fullmatch(r"\d{6}", new)
            page.screenshot(path=str(tmp_path / "pin.png"), full_page=True)
            page.click("text=Done")
            page.wait_for_url(f"{base}/pin")
            assert page.query_selector("#pin") is None and new not in page.content()
            # the desk, in the same browser: sign in, look Ann up, check the new PIN
            key = _with_services(settings, _agent)
            desk_page = browser.new_context(viewport={"width": 900, "height": 1000}).new_page()
            desk_page.goto(f"{base}/support")
            assert desk_page.url.endswith("/support/login")
            desk_page.fill("#email", "desk@operator.test")
            desk_page.fill("#key", key)
            desk_page.click("button:has-text('Sign in')")
            desk_page.wait_for_url(f"{base}/support")
            desk_page.fill("#email", ANN)
            desk_page.click("button:has-text('Look up')")
            desk_page.fill("#pin", new)
            desk_page.click("button:has-text('Check the PIN')")
            assert desk_page.get_attribute("#result", "data-result") == "match"
            refused = desk_page.inner_text("tr[data-action=add_contact]")
            assert "Refused" in refused and "never by phone" in refused
            assert "Allowed" in desk_page.inner_text("tr[data-action=invoices_pricing]")
            desk_page.screenshot(path=str(tmp_path / "desk.png"), full_page=True)
        finally:
            browser.close()
    assert _with_services(settings, lambda s: _check(s, new)) == "match"
    if new != old:
        assert _with_services(settings, lambda s: _check(s, old)) == "no_match"
    subjects = [m["Subject"] for _k, m in _with_services(settings, lambda s: mails_to(s, ANN))]
    assert subjects[-1] == "Your support PIN was changed"
