"""/admin/setup on both databases: the PowerShell and Google steps filled in with the
tenant's values, the live check opened (CSRF, audited) and read as JSON, a fragment and a
page; a new connector token shown once and filled into the rule, the old one still valid
until revoked, the last one never revoked; compliance officers read only; another tenant's
token cannot be revoked."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.accounts.authentication import tenant_by_connector_token
from core.accounts.networks import add_network
from core.accounts.tenants import get_tenant
from core.config.settings import Settings
from core.models import AuditEvent, ConnectorToken
from core.services import Services
from tests.conftest import make_settings
from tests.portal.conftest import World, csrf_of
from tests.portal.test_admin import _add_user, sign_in

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return make_settings(tmp_path, db_url, smtp_hostname="gw.msp.example", smtp_listen="0.0.0.0:25")


async def _network(services: Services, tenant_id: str, cidr: str) -> None:
    async with services.db.session() as s:
        tenant = await get_tenant(s, tenant_id)
        assert tenant is not None
        await add_network(s, tenant, cidr, private=False)
        await s.commit()


async def _tokens(services: Services, tenant_id: str) -> int:
    async with services.db.session() as s:
        return int(
            await s.scalar(
                select(func.count())
                .select_from(ConnectorToken)
                .where(ConnectorToken.tenant_id == tenant_id)
            )
            or 0
        )


async def _valid(services: Services, token: str) -> bool:
    async with services.db.session() as s:
        return await tenant_by_connector_token(s, token, "40.92.1.1") is not None


async def _actions(services: Services, tenant_id: str) -> list[str]:
    async with services.db.session() as s:
        rows = await s.execute(select(AuditEvent.action).where(AuditEvent.tenant_id == tenant_id))
        return list(rows.scalars())


def _text(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def test_setup_page_check_and_tokens(world: World) -> None:
    a = world.tenant("Acme", "acme.example")
    world.run(_network, world.services, a, "40.92.0.0/15")
    world.run(_add_user, world.services, a, "admin@acme.example", "admin")
    sign_in(world, "admin@acme.example")

    page = world.client.get("/admin/setup")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    text = _text(page.text)
    assert 'New-OutboundConnector -Name "sealmail (encryption)"' in text
    assert '-SmartHosts "gw.msp.example"' in text and '-TlsDomain "gw.msp.example"' in text
    assert '-SetHeaderName "X-Sealmail-Tenant-Token"' in text
    assert "<paste the connector token you were given>" in text
    assert '-ExceptIfHeaderMatchesMessageHeader "X-Sealmail-Processed"' in text
    assert "New-InboundConnector" in text and "acme-example.mail.protection.outlook.com:25" in text
    assert "acme.example" in text and "40.92.0.0/15" in text and a in text
    assert "single host gw.msp.example , port 25" in text  # the Google route
    assert 'href="/admin/setup"' in page.text  # in the menu
    assert "No check has run yet" in text

    # the check: opened with CSRF only, then waiting, readable three ways
    assert world.client.post("/admin/setup/check", data={}).status_code == 403
    r = world.client.post(
        "/admin/setup/check", data={"csrf": csrf_of(page.text)}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"].startswith("/admin/setup?done=check")
    state = world.client.get("/admin/setup/check?format=json").json()
    assert state["state"] == "waiting" and state["steps"] == []
    asked = world.client.get("/admin/setup/check", headers={"Accept": "application/json"})
    assert asked.json()["state"] == "waiting"
    fragment = world.client.get("/admin/setup/check?format=fragment")
    assert 'data-state="waiting"' in fragment.text and "<html" not in fragment.text
    assert "Waiting for your next message" in world.client.get("/admin/setup/check").text
    assert "setup.check.open" in world.run(_actions, world.services, a)

    # a new token: shown once, filled into the rule; the old one stays valid
    assert world.run(_tokens, world.services, a) == 1
    issued = world.client.post("/admin/setup/tokens", data={"csrf": csrf_of(page.text)})
    assert issued.status_code == 200 and issued.headers["cache-control"] == "no-store"
    m = re.search(r'<p class="secret-once" id="new-token">([^<]+)</p>', issued.text)
    assert m
    token = m.group(1)
    assert f'-SetHeaderValue "{token}"' in _text(issued.text)
    assert world.run(_tokens, world.services, a) == 2
    assert world.run(_valid, world.services, token)
    assert token not in world.client.get("/admin/setup").text  # never shown again
    # revoke the older one (its fingerprint is listed first)
    page = world.client.get("/admin/setup")
    ids = re.findall(r"/admin/setup/tokens/([0-9a-f]{12})/revoke", page.text)
    assert len(ids) == 2
    r = world.client.post(
        f"/admin/setup/tokens/{ids[0]}/revoke",
        data={"csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert world.run(_tokens, world.services, a) == 1 and world.run(_valid, world.services, token)
    # the last token is never revoked
    r = world.client.post(f"/admin/setup/tokens/{ids[1]}/revoke", data={"csrf": csrf_of(page.text)})
    assert r.status_code == 400 and "only connector token" in r.text
    actions = world.run(_actions, world.services, a)
    assert "tenant.connector_token.issue" in actions
    assert "tenant.connector_token.revoke" in actions

    # another tenant's token cannot be named
    b = world.tenant("Beta", "beta.example")
    world.run(_add_user, world.services, b, "admin@beta.example", "admin")
    other = world.new_client()
    sign_in(world, "admin@beta.example", other)
    bpage = other.get("/admin/setup")
    r = other.post(f"/admin/setup/tokens/{ids[1]}/revoke", data={"csrf": csrf_of(bpage.text)})
    assert r.status_code == 404
    assert other.get("/admin/setup/check?format=json").json()["state"] == "none"


def test_compliance_officer_reads_only(world: World) -> None:
    a = world.tenant("Acme", "acme.example")
    world.run(_add_user, world.services, a, "officer@acme.example", "compliance")
    sign_in(world, "officer@acme.example")
    page = world.client.get("/admin/setup")
    assert page.status_code == 200 and "New-TransportRule" in page.text
    assert "Send a test message now" not in page.text and "Issue a new token" not in page.text
    r = world.client.post("/admin/setup/check", data={"csrf": csrf_of(page.text)})
    assert r.status_code == 404
    assert world.client.get("/admin/setup/check?format=json").json()["state"] == "none"
