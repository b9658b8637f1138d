"""/admin/domains on both databases, its DNS checks answered by a loopback DNS server
(``dns_resolver`` points at it): a record not published shows as missing, a published one
as found, a wrong one as different; keys made, refused switch, switch, rotation; the sender
of notices; admins only, CSRF, tenant isolation, suspended tenants read-only. A code mail
from the tenant's domain then carries a signature that verifies against the published
record."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator
from pathlib import Path

import dkim
import pytest
from sqlalchemy import select

from core.config.settings import Settings
from core.dkim.models import DkimKey
from core.models import AuditEvent, Tenant
from core.services import Services
from tests.conftest import make_settings
from tests.helpers.dns_stub import DnsStub, dns_stub
from tests.portal.conftest import World, csrf_of
from tests.portal.test_admin import _add_user, sign_in

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def stub() -> Iterator[DnsStub]:
    with dns_stub() as s:
        yield s


@pytest.fixture
def settings(tmp_path: Path, db_url: str, stub: DnsStub) -> Settings:
    return make_settings(tmp_path, db_url, dns_resolver=stub.address, smtp_hostname="mx.op.example")


async def _keys(services: Services, tenant_id: str) -> list[DkimKey]:
    async with services.db.session() as s:
        rows = await s.execute(select(DkimKey).where(DkimKey.tenant_id == tenant_id))
        return list(rows.scalars())


async def _actions(services: Services, tenant_id: str) -> list[str]:
    async with services.db.session() as s:
        rows = await s.execute(select(AuditEvent.action).where(AuditEvent.tenant_id == tenant_id))
        return list(rows.scalars())


async def _suspend(services: Services, tenant_id: str) -> None:
    async with services.db.session() as s:
        t = await s.get(Tenant, tenant_id)
        assert t is not None
        t.standing = "suspended"
        await s.commit()


def _record(html: str, kind: str) -> str:
    """The text of the record block of ``kind`` (e.g. 'DKIM key', 'SPF', 'DMARC')."""
    blocks = re.findall(r'<div class="dns-record state-(\w+)">(.*?)</div>', html, re.S)
    for state, body in blocks:
        if re.search(rf"<h3>\s*{re.escape(kind)}", body):
            return state + " " + re.sub(r"\s+", " ", body)
    raise AssertionError(f"no {kind} record on the page")


def _value(html: str, kind: str) -> str:
    block = _record(html, kind)
    m = re.search(r'<dt>Value</dt><dd><code class="dns-value">([^<]+)</code>', block)
    assert m, block
    return m.group(1).replace("&#34;", '"')


def test_records_keys_and_sender(world: World, stub: DnsStub) -> None:
    a = world.tenant("Acme", "acme.example")
    world.run(_add_user, world.services, a, "admin@acme.example", "admin")
    assert world.client.get("/admin/domains", follow_redirects=False).status_code == 303
    sign_in(world, "admin@acme.example")

    page = world.client.get("/admin/domains")
    assert page.status_code == 200
    assert "acme.example has no DKIM key yet" in page.text
    assert _record(page.text, "SPF").startswith("missing")
    assert _record(page.text, "DMARC").startswith("missing")
    csrf = csrf_of(page.text)
    assert world.client.post("/admin/domains/keys", data={"action": "generate"}).status_code == 403

    r = world.client.post(
        "/admin/domains/keys",
        data={"csrf": csrf, "action": "generate", "domain": "acme.example"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/admin/domains?done=generate"
    page = world.client.get("/admin/domains?done=generate")
    assert "Publish its DKIM record below" in page.text
    dkim_block = _record(page.text, "DKIM key")
    assert dkim_block.startswith("missing") and "There is no DKIM record" in dkim_block
    (key,) = world.run(_keys, world.services, a)
    assert key.state == "pending"
    name = f"{key.selector}._domainkey.acme.example"
    assert name in dkim_block
    value = _value(page.text, "DKIM key")
    assert value == f"v=DKIM1; k=rsa; p={key.public_key}"

    # not published: the switch is refused with a sentence, nothing changes
    r = world.client.post(
        "/admin/domains/keys", data={"csrf": csrf, "action": "activate", "domain": "acme.example"}
    )
    assert r.status_code == 400 and "DNS does not show the new key" in r.text
    assert world.run(_keys, world.services, a)[0].state == "pending"

    # a wrong key published: found but different, and why
    stub.publish(name, "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAwrong")
    dkim_block = _record(world.client.get("/admin/domains").text, "DKIM key")
    assert dkim_block.startswith("different") and "different key" in dkim_block
    assert "AQEAwrong" in dkim_block  # what DNS shows is shown too

    stub.txt[name] = [value]
    stub.publish("acme.example", "v=spf1 mx -all")
    stub.publish("_dmarc.acme.example", "v=DMARC1; p=quarantine; rua=mailto:d@acme.example")
    page = world.client.get("/admin/domains")
    assert _record(page.text, "DKIM key").startswith("ok")
    assert _record(page.text, "DMARC").startswith("ok")
    assert _record(page.text, "SPF").startswith("ok")  # through a smarthost: any one record

    r = world.client.post(
        "/admin/domains/keys",
        data={"csrf": csrf, "action": "activate", "domain": "acme.example"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/admin/domains?done=activate"
    page = world.client.get("/admin/domains")
    assert f"signed with the key <code>{key.selector}</code>" in page.text

    # the sender of notices: only an address of the tenant's domains
    r = world.client.post(
        "/admin/domains/sender", data={"csrf": csrf, "notification_from": "x@other.example"}
    )
    assert r.status_code == 400 and "not in one of the tenant" in r.text
    r = world.client.post(
        "/admin/domains/sender",
        data={"csrf": csrf, "notification_from": "Notices@Acme.example"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = world.client.get("/admin/domains?done=sender")
    assert "notices@acme.example" in page.text and "They are signed for acme.example" in page.text

    # the next code mail comes from the tenant's domain, signed, and verifies
    sign_in(world, "admin@acme.example", world.new_client())
    _item, mail = world.codes()[-1]
    assert mail["From"].addresses[0].addr_spec == "notices@acme.example"
    raw = mail.as_bytes(policy=email.policy.SMTP)
    assert "d=acme.example" in "".join(str(mail["DKIM-Signature"]).split())
    assert dkim.verify(raw, dnsfunc=stub.dnsfunc)

    # rotation from the page: a second key waits, the first keeps signing
    r = world.client.post(
        "/admin/domains/keys",
        data={"csrf": csrf, "action": "rotate", "domain": "acme.example"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = world.client.get("/admin/domains")
    assert "A new key" in page.text and "is waiting" in page.text
    r = world.client.post(
        "/admin/domains/keys",
        data={"csrf": csrf, "action": "activate", "domain": "acme.example", "force": "yes"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    states = sorted(k.state for k in world.run(_keys, world.services, a))
    assert states == ["active", "retired"]
    assert "Retired keys" in world.client.get("/admin/domains").text

    actions = world.run(_actions, world.services, a)
    for action in ("dkim.generate", "dkim.activate", "dkim.rotate", "tenant.update"):
        assert action in actions


def test_admins_only_and_tenants_apart(world: World, stub: DnsStub) -> None:
    a = world.tenant("Acme", "acme.example")
    b = world.tenant("Bravo", "bravo.example")
    world.run(_add_user, world.services, a, "officer@acme.example", "compliance")
    world.run(_add_user, world.services, b, "admin@bravo.example", "admin")

    officer = world.new_client()
    sign_in(world, "officer@acme.example", officer)
    assert officer.get("/admin/domains").status_code == 404

    bravo = world.new_client()
    sign_in(world, "admin@bravo.example", bravo)
    page = bravo.get("/admin/domains")
    assert page.status_code == 200 and "acme.example" not in page.text
    csrf = csrf_of(page.text)
    # another tenant's domain is not there for this admin
    r = bravo.post(
        "/admin/domains/keys", data={"csrf": csrf, "action": "generate", "domain": "acme.example"}
    )
    assert r.status_code == 404
    assert world.run(_keys, world.services, a) == []
    r = bravo.post(
        "/admin/domains/sender", data={"csrf": csrf, "notification_from": "ceo@acme.example"}
    )
    assert r.status_code == 400
    assert (
        bravo.post("/admin/domains/keys", data={"csrf": csrf, "action": "explode"}).status_code
        == 400
    )

    # a suspended tenant reads its records but changes nothing
    world.run(_suspend, world.services, b)
    assert bravo.get("/admin/domains").status_code == 200
    r = bravo.post("/admin/domains/keys", data={"csrf": csrf, "action": "generate"})
    assert r.status_code == 403
    assert world.run(_keys, world.services, b) == []
