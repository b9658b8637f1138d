"""Every page of the partner console on a phone and on a desk (issue 14, item 1), in a real
headless Chromium: every GET route under ``/partner`` in the route table is visited (a new
page is covered the day it is added; a path parameter with no value fails naming it), plus
the page that shows a new tenant's credentials and a tenant's admin console opened as the
partner. At 390x844 nothing scrolls sideways; at both widths axe finds nothing serious."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.routing import Route

from core.accounts.partner_users import add_partner_user
from core.accounts.partners import create_partner
from core.accounts.tenants import create_tenant
from core.services import Services
from portal.routes import routes
from tests.helpers.pages import ARGS, CHROMIUM, look_at
from tests.portal.served import in_thread, latest_code
from tests.portal.test_admin_responsive import fill

BOSS = "boss@msp.example"


def partner_pages() -> list[str]:
    return [
        r.path
        for r in routes()
        if isinstance(r, Route) and r.path.startswith("/partner") and "GET" in (r.methods or ())
    ]


def _seed(settings: Any) -> dict[str, str]:
    async def run() -> dict[str, str]:
        services = Services.open(settings)
        try:
            async with services.db.session() as s:
                p = await create_partner(s, "Northwind IT")
                p.nfr_max_users, p.nfr_max_messages = 5, 500
                await add_partner_user(s, p, BOSS, "partner-admin")
                ended = datetime.date.today() - datetime.timedelta(days=2)
                a = await create_tenant(
                    s, services.keyring, "Contoso Dental", ["contoso-dental.example"],
                    partner=p.id, plan="trial", trial_ends_on=ended,
                )  # fmt: skip
                await create_tenant(
                    s, services.keyring, "Fabrikam", ["fabrikam.example"], partner=p.id,
                    plan="nfr",
                )  # fmt: skip
                await s.commit()
                return {"tenant_id": a.tenant_id}
        finally:
            await services.close()

    return in_thread(run)


@pytest.mark.browser
@pytest.mark.timeout(240)
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_every_partner_page_fits_a_phone(served) -> None:  # noqa: ANN001
    from playwright.sync_api import sync_playwright

    base, settings = served
    values = _seed(settings)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
            page.goto(f"{base}/partner/login")
            look_at(page, "partner-login", group="partner")
            page.fill("#email", BOSS)
            page.click("button[type=submit]")
            page.wait_for_selector("#code")
            look_at(page, "partner-code", group="partner")
            page.fill("#code", latest_code(settings))
            page.click("button:has-text('Sign in')")
            page.wait_for_url(f"{base}/partner")
            for path in partner_pages():
                if path == "/partner/login":
                    continue
                response = page.goto(base + fill(path, values))
                assert response is not None and response.status == 200, path
                look_at(page, path.strip("/").replace("/", "-"), group="partner")
            # a new tenant: the credentials page
            page.goto(f"{base}/partner/tenants/new")
            page.fill("#name", "Adatum Legal")
            page.fill("#domains", "adatum-legal.example")
            page.click("button:has-text('Create the tenant')")
            page.wait_for_selector("text=is ready")
            look_at(page, "partner-tenant-created", group="partner")
            # a tenant's console opened as the partner, with the way back
            page.goto(f"{base}/partner/tenants/{values['tenant_id']}")
            page.click("button:has-text('Open its admin console')")
            page.wait_for_url(f"{base}/admin")
            assert page.locator(".acting-banner").is_visible()
            look_at(page, "partner-in-tenant-console", group="partner")
            page.click("button:has-text('Back to the partner console')")
            page.wait_for_url(f"{base}/partner/tenants/{values['tenant_id']}*")
        finally:
            browser.close()
