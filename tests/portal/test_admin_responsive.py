"""Every page of the admin console on a phone and on a desk (issue 13, item 1), in a real
headless Chromium: at 390x844 no page scrolls sideways and at both widths axe-core finds no
serious or critical violation.

The pages are not listed by hand: every GET route under ``/admin`` in the portal's route
table is visited, so a new page is covered the day it is added. A route with a path parameter
takes its value from the data made here (a held message, a message with decisions, a
recipient key, ...); a parameter with no value fails the test naming the route, so no page
slips through unchecked. Downloads (the archive export) are checked for their status only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from starlette.routing import Route

from branding.brands import default_brand
from core import recipient_keys
from core.accounts.api_keys import create_key, key_id
from core.accounts.networks import add_network
from core.accounts.tenants import get_tenant
from core.accounts.users import add_user
from core.policy.model import parse_policy
from core.policy.store import set_policy
from core.services import Services
from portal.routes import routes
from tests.core.test_quarantine import make_held
from tests.helpers import keygen
from tests.helpers.keygen import Certs
from tests.helpers.pages import ARGS, CHROMIUM, look_at
from tests.portal.conftest import make_tenant
from tests.portal.served import in_thread, latest_code

certs = keygen.certs  # session fixture
ADMIN = "admin@acme.example"
POLICY = "rules:\n  - name: deals\n    when:\n      subject_contains: [merger]\n    action: hold\n"
DOWNLOADS = ("/admin/archive/export", "/admin/audit.csv")
# pages that need a query to show their full state (e.g. search results)
QUERIES = {"/admin/archive": "?sender=alice%40acme.example"}


def _seed(settings: Any, certs: Certs) -> dict[str, str]:
    """A tenant with an admin, a held message (which also has decisions) and a key: the
    values the parametrised admin routes take."""

    async def run() -> dict[str, str]:
        services = Services.open(settings)
        try:
            tid = await make_tenant(services, "Acme", "acme.example", display_name="Acme Bank")
            async with services.db.session() as s:
                tenant = await get_tenant(s, tid)
                await add_user(s, tenant, ADMIN, "admin")
                sender = await add_user(s, tenant, "sam@acme.example", "sender")
                _key, api_key = await create_key(s, tid, "ticketing system", "compliance", ADMIN)
                await add_network(s, tenant, "192.0.2.0/24", private=False)
                await s.commit()
                user_id, api_key_id = sender.id, key_id(api_key)
                brand = await default_brand(s, tenant, ADMIN)
                await s.commit()
                brand_id = brand.id
            message_id, held_id = await make_held(services, tid)
            async with services.db.session() as s:
                rows = await recipient_keys.import_keys(s, tid, certs.pem["carol"])
                for doc in (POLICY, POLICY.replace("merger", "acquisition")):
                    await set_policy(s, tid, parse_policy(doc), ADMIN)
                await s.commit()
            return {
                "tenant_id": tid,
                "message_id": message_id,
                "held_id": held_id,
                "key_id": rows[0].id,
                "version": "1",
                "user_id": user_id,
                "api_key_id": api_key_id,
                "brand_id": brand_id,
            }
        finally:
            await services.close()

    return in_thread(run)


def admin_pages() -> list[str]:
    """Every GET path under /admin in the route table, parameters left as ``{name}``."""
    found = []
    for route in routes():
        if isinstance(route, Route) and route.path.startswith("/admin"):
            if route.methods and "GET" in route.methods:
                found.append(route.path)
    return found


def fill(path: str, values: dict[str, str]) -> str:
    for name in [p.split("}")[0].split(":")[0] for p in path.split("{")[1:]]:
        assert name in values, (
            f"{path}: no test value for the path parameter {name!r}; add one to _seed so "
            "this admin page is checked on a phone"
        )
        path = path.replace("{" + name + "}", values[name]).replace(
            "{" + name + ":int}", values[name]
        )
    return path


def test_every_admin_route_has_a_value() -> None:
    """The route discovery itself: /admin pages exist and each parameter is one we fill."""
    pages = admin_pages()
    assert "/admin" in pages and "/admin/quarantine" in pages
    values = {
        "tenant_id": "t",
        "message_id": "m",
        "held_id": "h",
        "key_id": "k",
        "version": "1",
        "user_id": "u",
        "api_key_id": "a",
        "brand_id": "b",
    }
    for path in pages:
        assert "{" not in fill(path, values)


def _sign_in(page: Any, base: str, settings: Any) -> None:
    page.goto(f"{base}/admin/login")
    page.fill("#email", ADMIN)
    page.click("button[type=submit]")
    page.wait_for_selector("#code")
    page.fill("#code", latest_code(settings))
    page.click("button:has-text('Sign in')")
    page.wait_for_url(f"{base}/admin")


@pytest.mark.browser
@pytest.mark.timeout(300)
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_every_admin_page_fits_a_phone(served, certs: Certs) -> None:  # noqa: ANN001
    from playwright.sync_api import sync_playwright

    base, settings = served
    values = _seed(settings, certs)
    visited: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 390, "height": 844})
            page = context.new_page()
            page.goto(f"{base}/admin/login")  # the one page before signing in
            look_at(page, "admin-login", group="admin")
            _sign_in(page, base, settings)
            for path in admin_pages():
                if path in ("/admin/login",):
                    continue
                url = base + fill(path, values)
                if path in DOWNLOADS:
                    response = context.request.get(url)
                    assert response.status == 200, f"{path}: {response.status}"
                    continue
                response = page.goto(url + QUERIES.get(path, ""))
                assert response is not None and response.status == 200, (
                    f"{path}: {response.status if response else 'no response'}"
                )
                look_at(page, path.strip("/").replace("/", "-") or "admin", group="admin")
                visited.append(path)
            # the menu folds away on a phone and opens on a tap
            page.set_viewport_size({"width": 390, "height": 844})
            page.goto(f"{base}/admin")
            nav_link = page.locator("nav[aria-label=Admin] a[href='/admin/quarantine']")
            assert not nav_link.is_visible()
            page.click("details.adminnav > summary")
            assert nav_link.is_visible()
            look_at(page, "admin-menu-open", group="admin")
            # on a desk the menu is a sidebar, always shown, the current page marked
            page.set_viewport_size({"width": 1280, "height": 800})
            page.goto(f"{base}/admin/quarantine")
            current = page.locator("nav[aria-label=Admin] a[aria-current=page]")
            assert current.inner_text() == "Quarantine" and current.is_visible()
        finally:
            browser.close()
    assert len(visited) >= 8, visited
