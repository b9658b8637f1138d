"""Partners, tenants and how a sender proves which tenant it belongs to (both databases)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from core.accounts.authentication import (
    authenticate_api_key,
    authenticate_smtp,
    tenant_by_connector_token,
)
from core.accounts.domains import tenant_domains
from core.accounts.networks import add_network, tenant_by_network
from core.accounts.partners import create_partner, find_partner, list_partners
from core.accounts.tenants import TenantCredentials, create_tenant, find_tenant, set_standing
from core.errors import NotFound, PermanentError
from core.models import (
    ApiKey,
    AuditEvent,
    ConnectorToken,
    SmtpCredential,
    Tenant,
    TenantDomain,
    TenantKey,
)
from core.services import Services


async def create(svc: Services, name: str, domains: list[str], **kw: object) -> TenantCredentials:
    async with svc.db.session() as s:
        creds = await create_tenant(s, svc.keyring, name, domains, **kw)  # type: ignore[arg-type]
        await s.commit()
    return creds


async def test_create_tenant_stores_everything_and_no_secret_in_clear(services: Services) -> None:
    creds = await create(
        services, "Acme Corp", ["Acme.Example", "mail.acme.example."], plan="trial"
    )
    assert creds.tenant_id.startswith("t_")
    assert len(creds.smtp_password) >= 24 and len(creds.connector_token) >= 40
    assert creds.api_key.startswith("smk_")
    assert creds.smtp_password not in repr(creds) and creds.api_key not in repr(creds)
    async with services.db.session() as s:
        tenant = await find_tenant(s, "Acme Corp")
        assert tenant.id == creds.tenant_id
        assert (tenant.plan, tenant.standing) == ("trial", "active")
        assert await find_tenant(s, creds.tenant_id) is not None
        domains = await tenant_domains(s, tenant.id)
        assert domains == ["acme.example", "mail.acme.example"]
        assert (await s.execute(select(TenantKey.version))).scalars().all() == [1]
        stored = ""
        for model in (SmtpCredential, ConnectorToken, ApiKey):
            for row in (await s.execute(select(model))).scalars().all():
                stored += " ".join(str(v) for v in vars(row).values())
        assert creds.tenant_id in stored  # the scan sees the rows
        for secret in (creds.smtp_password, creds.connector_token, creds.api_key):
            assert secret not in stored
        audit = (await s.execute(select(AuditEvent))).scalars().all()
        assert [a.action for a in audit] == ["tenant.create"]


async def test_duplicate_domain_or_name_is_refused(services: Services) -> None:
    await create(services, "Acme", ["acme.example"])
    with pytest.raises(PermanentError, match="acme.example"):
        await create(services, "Other", ["other.example", "ACME.example"])
    with pytest.raises(PermanentError, match="already exists"):
        await create(services, "Acme", ["new.example"])
    async with services.db.session() as s:
        assert len((await s.execute(select(Tenant))).scalars().all()) == 1
        assert (await s.execute(select(TenantDomain.domain))).scalars().all() == ["acme.example"]


@pytest.mark.parametrize(
    ("name", "domains", "kw"),
    [
        ("Acme", ["not a domain"], {}),
        ("Acme", [], {}),
        ("Acme", ["acme.example"], {"plan": "platinum"}),
        ("", ["acme.example"], {}),
        ("<script>", ["acme.example"], {}),
        ("Acme", ["acme.example"], {"networks": [("10.0.0.0/33", False)]}),
    ],
)
async def test_invalid_tenant_input(services: Services, name: str, domains, kw) -> None:  # noqa: ANN001
    with pytest.raises(PermanentError):
        await create(services, name, domains, **kw)


async def test_partner_owns_tenants(services: Services) -> None:
    async with services.db.session() as s:
        partner = await create_partner(s, "Reseller One")
        await s.commit()
    creds = await create(services, "Acme", ["acme.example"], partner="Reseller One")
    async with services.db.session() as s:
        tenant = await find_tenant(s, creds.tenant_id)
        assert tenant.partner_id == partner.id
        assert [p.name for p in await list_partners(s)] == ["Reseller One"]
        assert (await find_partner(s, partner.id)).name == "Reseller One"
        with pytest.raises(PermanentError):
            await create_partner(s, "Reseller One")
        with pytest.raises(NotFound):
            await find_partner(s, "nobody")
        with pytest.raises(NotFound):
            await find_tenant(s, "nobody")
    with pytest.raises(NotFound):
        await create(services, "Bravo", ["bravo.example"], partner="ghost")


async def test_smtp_authentication(services: Services) -> None:
    a = await create(services, "Acme", ["acme.example"])
    b = await create(services, "Bravo", ["bravo.example"])
    async with services.db.session() as s:
        t = await authenticate_smtp(s, a.smtp_username, a.smtp_password)
        assert t is not None and t.id == a.tenant_id
        assert await authenticate_smtp(s, a.smtp_username, b.smtp_password) is None
        assert await authenticate_smtp(s, a.smtp_username, "") is None
        assert await authenticate_smtp(s, "t_unknown", a.smtp_password) is None


async def test_connector_token_only_from_allowed_networks(services: Services) -> None:
    a = await create(
        services,
        "Acme",
        ["acme.example"],
        networks=[("40.92.0.0/15", False), ("2001:db8::/32", False)],
    )
    b = await create(services, "Bravo", ["bravo.example"])
    async with services.db.session() as s:
        t = await tenant_by_connector_token(s, a.connector_token, "40.93.1.2")
        assert t is not None and t.id == a.tenant_id
        t = await tenant_by_connector_token(s, f" {a.connector_token}\r\n", "2001:db8::5")
        assert t is not None and t.id == a.tenant_id
        assert await tenant_by_connector_token(s, a.connector_token, "10.0.0.1") is None
        assert await tenant_by_connector_token(s, a.connector_token, "garbage") is None
        # b has no networks at all: its token alone identifies nothing
        assert await tenant_by_connector_token(s, b.connector_token, "40.93.1.2") is None
        assert await tenant_by_connector_token(s, "forged", "40.93.1.2") is None
        # an allowed network that is not private does not identify by address alone
        assert await tenant_by_network(s, "40.93.1.2") is None


async def test_private_network_lookup_most_specific_wins(services: Services) -> None:
    wide = await create(services, "Wide", ["wide.example"], networks=[("10.0.0.0/8", True)])
    narrow = await create(services, "Narrow", ["narrow.example"], networks=[("10.1.0.0/16", True)])
    async with services.db.session() as s:
        tenant = await find_tenant(s, "Wide")
        await add_network(s, tenant, "10.1.2.0/24", True)
        await s.commit()
    async with services.db.session() as s:

        async def who(ip: str) -> str | None:
            t = await tenant_by_network(s, ip)
            return t.id if t else None

        assert await who("10.9.9.9") == wide.tenant_id
        assert await who("10.1.9.9") == narrow.tenant_id
        assert await who("10.1.2.3") == wide.tenant_id  # its /24 beats the other's /16
        assert await who("192.168.1.1") is None
        assert await who("not-an-ip") is None
        assert await who("::1") is None


async def test_api_key_authentication(services: Services) -> None:
    a = await create(services, "Acme", ["acme.example"])
    async with services.db.session() as s:
        found = await authenticate_api_key(s, a.api_key)
        assert found is not None
        tenant, role = found
        assert (tenant.id, role) == (a.tenant_id, "admin")
        assert await authenticate_api_key(s, a.api_key + "x") is None
        assert await authenticate_api_key(s, a.connector_token) is None


async def test_standing_changes_are_audited(services: Services) -> None:
    a = await create(services, "Acme", ["acme.example"])
    async with services.db.session() as s:
        tenant = await find_tenant(s, "Acme")
        await set_standing(s, tenant, "suspended", "billing")
        await s.commit()
    async with services.db.session() as s:
        tenant = await find_tenant(s, "Acme")
        assert tenant.standing == "suspended"
        await set_standing(s, tenant, "active", "cli")
        with pytest.raises(PermanentError):
            await set_standing(s, tenant, "deleted", "cli")
        await s.commit()
    async with services.db.session() as s:
        rows = (await s.execute(select(AuditEvent).order_by(AuditEvent.id))).scalars().all()
        changes = [(r.action, r.actor, json.loads(r.detail)) for r in rows[1:]]
        assert changes == [
            ("tenant.suspended", "billing", {"previous": "active"}),
            ("tenant.active", "cli", {"previous": "suspended"}),
        ]
        assert all(r.tenant_id == a.tenant_id and r.subject_id == a.tenant_id for r in rows)
        assert (await find_tenant(s, "Acme")).standing == "active"


async def test_tenant_addresses_use_the_one_validator(services: Services) -> None:
    """The notification and journal addresses of a tenant are checked by core.addresses: a
    domain of the tenant is not enough for a notification address that is no address."""
    from core.accounts.tenant_settings import update_tenant

    creds = await create(services, "Acme", ["acme.example"])
    async with services.db.session() as s:
        tenant = await find_tenant(s, creds.tenant_id)
        for bad in ("no tices@acme.example", "a@b@acme.example", "ann\x07@acme.example"):
            with pytest.raises(PermanentError, match="is not an email address"):
                await update_tenant(s, tenant, "test", notification_from=bad)
        with pytest.raises(PermanentError, match="not in one of the tenant's domains"):
            await update_tenant(s, tenant, "test", notification_from="ann@other.example")
        for bad in ("journal@localhost", "journal@msp.example.", "jour\x00nal@msp.example"):
            with pytest.raises(PermanentError, match="is not an email address"):
                await update_tenant(s, tenant, "test", journal_address=bad)
        changed = await update_tenant(
            s, tenant, "test", notification_from=" Notices@ACME.example", journal_address=""
        )
        assert changed == {"notification_from": "notices@acme.example"}
