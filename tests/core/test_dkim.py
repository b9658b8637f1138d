"""A tenant's DKIM keys (both databases): made pending, switched on only when DNS shows the
record (or forced), rotated under a new selector; every mail sealmail writes through
``outbox.post`` is signed for the tenant's From domain and verifies with dkimpy against the
published record; the tenant's relayed mail and other domains are left alone."""

from __future__ import annotations

import email
import email.policy
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import dkim
import pytest
from sqlalchemy import select

from core import outbox
from core.accounts.tenants import create_tenant, get_tenant
from core.aead import dkim_key_aad, unwrap
from core.dkim import keys, publish, records
from core.dkim.models import DkimKey
from core.errors import IntegrityError, PermanentError
from core.models import AuditEvent, OutboxItem
from core.services import Services
from tests.conftest import make_settings
from tests.helpers.dns_stub import DnsStub, dns_stub

pytestmark = pytest.mark.timeout(60)

NOTICE = (
    b"From: Acme notices <notices@acme.example>\r\nTo: bob@x.example\r\n"
    b"Subject: A secure message for you\r\nDate: Fri, 04 Dec 2026 10:00:00 +0000\r\n"
    b"Message-ID: <n1@acme.example>\r\nMIME-Version: 1.0\r\nAuto-Submitted: auto-generated\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\nOpen it at the portal.\r\n"
)


@pytest.fixture
def stub() -> Iterator[DnsStub]:
    with dns_stub() as s:
        yield s


@pytest.fixture
async def svc(tmp_path: Path, db_url: str, stub: DnsStub) -> AsyncIterator[Services]:
    services = Services.open(make_settings(tmp_path, db_url, dns_resolver=stub.address))
    yield services
    await services.close()


async def _tenant(svc: Services, name: str, *domains: str) -> str:
    async with svc.db.session() as s:
        creds = await create_tenant(s, svc.keyring, name, list(domains))
        await s.commit()
    return creds.tenant_id


async def _post(svc: Services, tid: str, raw: bytes = NOTICE, kind: str = "notification") -> bytes:
    async with svc.db.session() as s:
        item = await outbox.post(
            s,
            svc.vault,
            kind=kind,
            tenant_id=tid,
            mail_from="alice@acme.example",
            recipients=["bob@x.example"],
            raw=raw,
            lifetime=600.0,
        )
        await s.commit()
        row = await s.get(OutboxItem, item.id)
        assert row is not None
        return await svc.vault.read(s, tid, row.object_id)


async def _records(svc: Services, tid: str) -> list[records.Record]:
    async with svc.db.session() as s:
        tenant = await get_tenant(s, tid)
        assert tenant is not None
        return await publish.records_of(s, svc.settings, tenant)


def _publish_dkim(stub: DnsStub, wanted: list[records.Record]) -> None:
    for r in wanted:
        if r.kind == "dkim":
            stub.txt[r.name] = [r.value]


def _signature(data: bytes) -> dict[str, str]:
    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    header = msg["DKIM-Signature"]
    assert header, "not signed"
    tags = {}
    for part in "".join(str(header).split()).split(";"):
        name, _, value = part.partition("=")
        tags[name] = value
    return tags


async def test_a_notice_is_signed_only_once_the_key_is_switched_on(
    svc: Services, stub: DnsStub
) -> None:
    tid = await _tenant(svc, "Acme", "acme.example", "acme-mail.example")
    async with svc.db.session() as s:
        made = await keys.generate(s, svc.keyring, tid, "cli")
        await s.commit()
    assert sorted(k.domain for k in made) == ["acme-mail.example", "acme.example"]
    assert all(k.state == keys.PENDING for k in made)
    assert made[0].selector.startswith("sm") and tid[2:8] in made[0].selector

    # pending: nothing signed yet
    assert b"DKIM-Signature" not in await _post(svc, tid)

    # not published: the switch is refused with a sentence naming the record
    async with svc.db.session() as s:
        tenant = await get_tenant(s, tid)
        assert tenant is not None
        with pytest.raises(PermanentError, match="_domainkey.acme.example"):
            await publish.activate(s, svc.keyring, svc.settings, tenant, "cli")
        await s.rollback()

    wanted = await _records(svc, tid)
    _publish_dkim(stub, wanted)
    async with svc.db.session() as s:
        tenant = await get_tenant(s, tid)
        assert tenant is not None
        switched = await publish.activate(s, svc.keyring, svc.settings, tenant, "cli")
        await s.commit()
    assert len(switched) == 2

    data = await _post(svc, tid)
    tags = _signature(data)
    assert tags["d"] == "acme.example"
    assert tags["s"] == made[0].selector
    assert tags["c"] == "relaxed/relaxed"
    signed = tags["h"].lower().split(":")
    for name in ("from", "to", "subject", "date", "message-id", "mime-version", "auto-submitted"):
        assert name in signed
    assert dkim.verify(data, dnsfunc=stub.dnsfunc)

    async with svc.db.session() as s:
        actions = (
            (await s.execute(select(AuditEvent.action).where(AuditEvent.tenant_id == tid)))
            .scalars()
            .all()
        )
    assert actions.count("dkim.generate") == 2 and actions.count("dkim.activate") == 2


async def test_relayed_mail_and_other_domains_are_not_signed(svc: Services, stub: DnsStub) -> None:
    tid = await _tenant(svc, "Acme", "acme.example")
    other = await _tenant(svc, "Other", "other.example")
    for t in (tid, other):
        async with svc.db.session() as s:
            await keys.generate(s, svc.keyring, t, "cli")
            await keys.activate(s, svc.keyring, t, "cli", force=True)
            await s.commit()
    assert b"DKIM-Signature" in await _post(svc, tid)
    # the tenant's own message, relayed (clear or encrypted): never signed by us
    assert b"DKIM-Signature" not in await _post(svc, tid, kind="clear")
    assert b"DKIM-Signature" not in await _post(svc, tid, kind="encrypted")
    # the operator's address, and another tenant's domain, get no signature of this tenant
    for sender in (b"secure-mail@localhost", b"x@other.example"):
        raw = NOTICE.replace(b"notices@acme.example", sender)
        assert b"DKIM-Signature" not in await _post(svc, tid, raw)
    # two From addresses: no signature (which domain would it be?)
    two = NOTICE.replace(b"<notices@acme.example>", b"<notices@acme.example>, x@acme.example")
    assert b"DKIM-Signature" not in await _post(svc, tid, two)


async def test_rotation_keeps_signing_with_the_old_key_until_the_switch(
    svc: Services, stub: DnsStub
) -> None:
    tid = await _tenant(svc, "Acme", "acme.example")
    async with svc.db.session() as s:
        first = (await keys.generate(s, svc.keyring, tid, "cli"))[0]
        await keys.activate(s, svc.keyring, tid, "cli", force=True)
        await s.commit()
        # a second generate does nothing while a key is active; rotate makes a new one
        assert await keys.generate(s, svc.keyring, tid, "cli") == []
        second = (await keys.generate(s, svc.keyring, tid, "cli", rotate=True))[0]
        await s.commit()
        # rotating again while one waits does not pile up keys
        assert await keys.generate(s, svc.keyring, tid, "cli", rotate=True) == []
    assert second.selector != first.selector and second.state == keys.PENDING
    _publish_dkim(stub, await _records(svc, tid))
    data = await _post(svc, tid)
    assert _signature(data)["s"] == first.selector
    assert dkim.verify(data, dnsfunc=stub.dnsfunc)

    async with svc.db.session() as s:
        tenant = await get_tenant(s, tid)
        assert tenant is not None
        await publish.activate(s, svc.keyring, svc.settings, tenant, "admin@acme.example")
        await s.commit()
        states = {
            k.selector: k.state
            for k in (await s.execute(select(DkimKey).where(DkimKey.tenant_id == tid))).scalars()
        }
    assert states == {first.selector: keys.RETIRED, second.selector: keys.ACTIVE}
    data = await _post(svc, tid)
    assert _signature(data)["s"] == second.selector
    assert dkim.verify(data, dnsfunc=stub.dnsfunc)
    # nothing left to switch: a sentence, not a crash
    async with svc.db.session() as s:
        with pytest.raises(PermanentError, match="no new key"):
            await keys.activate(s, svc.keyring, tid, "cli", force=True)


async def test_the_private_key_is_wrapped_and_bound_to_its_row(svc: Services) -> None:
    tid = await _tenant(svc, "Acme", "acme.example")
    async with svc.db.session() as s:
        key = (await keys.generate(s, svc.keyring, tid, "cli"))[0]
        await s.commit()
        der = await keys.private_key(s, svc.keyring, key)
        assert der.startswith(b"0\x82")  # a DER SEQUENCE: the PKCS#8 key
        assert der not in key.wrapped_private_key
        kek = await svc.keyring.kek(s, tid, key.kek_version)
        # moved to another selector or tenant, the wrapped key does not open
        with pytest.raises(IntegrityError):
            unwrap(kek, key.wrapped_private_key, dkim_key_aad(tid, key.domain, "other"))
        with pytest.raises(IntegrityError):
            unwrap(kek, key.wrapped_private_key, dkim_key_aad("t_other", key.domain, key.selector))


def _rec(kind: str, value: str, name: str = "n") -> records.Record:
    return records.Record(kind, "acme.example", name, value, "why")


def test_what_dns_shows_is_judged_in_sentences() -> None:
    dk = _rec("dkim", "v=DKIM1; k=rsa; p=ABCD")
    assert records.judge(dk, None).state == records.MISSING
    assert records.judge(dk, ["v=spf1 -all"]).state == records.MISSING
    assert records.judge(dk, ["v=DKIM1; k=rsa; p=AB CD"]).state == records.OK
    wrong = records.judge(dk, ["v=DKIM1; k=rsa; p=EFGH"])
    assert wrong.state == records.DIFFERENT and "different key" in wrong.says
    assert "revoked" in records.judge(dk, ["v=DKIM1; p="]).says
    assert "k=ed25519" in records.judge(dk, ["v=DKIM1; k=ed25519; p=ABCD"]).says

    spf = _rec("spf", "v=spf1 a:mail.example ~all")
    assert records.judge(spf, []).state == records.MISSING
    assert records.judge(spf, ["v=spf1 mx a:mail.example -all"]).state == records.OK
    missing_host = records.judge(spf, ["v=spf1 mx -all"])
    assert missing_host.state == records.DIFFERENT and "a:mail.example" in missing_host.says
    assert "two SPF" in records.judge(spf, ["v=spf1 -all", "v=spf1 mx -all"]).says
    relay = _rec("spf", "v=spf1 include:<your mail relay's SPF domain> ~all")
    assert records.judge(relay, ["v=spf1 include:spf.protection.outlook.com -all"]).state == "ok"

    dmarc = _rec("dmarc", "v=DMARC1; p=quarantine")
    assert records.judge(dmarc, None).state == records.MISSING
    assert records.judge(dmarc, ["v=DMARC1; p=reject"]).state == records.OK
    assert "only report" in records.judge(dmarc, ["v=DMARC1; p=none"]).says


async def test_live_check_through_the_configured_resolver(svc: Services, stub: DnsStub) -> None:
    tid = await _tenant(svc, "Acme", "acme.example")
    async with svc.db.session() as s:
        await keys.generate(s, svc.keyring, tid, "cli")
        await s.commit()
    wanted = await _records(svc, tid)
    assert [r.kind for r in wanted] == ["dkim", "spf", "dmarc"]
    _publish_dkim(stub, wanted)
    stub.publish("_dmarc.acme.example", "v=DMARC1; p=none")
    async with svc.db.session() as s:
        tenant = await get_tenant(s, tid)
        assert tenant is not None
        checks = {c.record.kind: c for c in await publish.checked(s, svc.settings, tenant)}
    assert checks["dkim"].state == records.OK  # a 2048-bit key over UDP, in 255-octet strings
    assert checks["spf"].state == records.MISSING
    assert checks["dmarc"].state == records.DIFFERENT
    assert "_domainkey.acme.example" in " ".join(stub.queries)


async def test_keys_still_sign_after_the_tenant_kek_is_rotated(
    svc: Services, stub: DnsStub
) -> None:
    from core.dkim import cache
    from core.rotation import rotate_tenant

    tid = await _tenant(svc, "Acme", "acme.example")
    async with svc.db.session() as s:
        await keys.generate(s, svc.keyring, tid, "cli")
        await keys.activate(s, svc.keyring, tid, "cli", force=True)
        await s.commit()
    _publish_dkim(stub, await _records(svc, tid))
    for _ in range(2):
        await rotate_tenant(svc.db, svc.keyring, tid)
    cache.forget(svc.keyring, tid)
    svc.keyring._cache.clear()  # open the KEK again from the database, as a new process would
    data = await _post(svc, tid)
    assert dkim.verify(data, dnsfunc=stub.dnsfunc)


async def test_a_key_that_does_not_open_never_stops_a_notice(svc: Services, caplog) -> None:  # noqa: ANN001
    tid = await _tenant(svc, "Acme", "acme.example")
    async with svc.db.session() as s:
        key = (await keys.generate(s, svc.keyring, tid, "cli"))[0]
        await keys.activate(s, svc.keyring, tid, "cli", force=True)
        blob = bytearray(key.wrapped_private_key)
        blob[-1] ^= 1
        key.wrapped_private_key = bytes(blob)
        await s.commit()
    data = await _post(svc, tid)
    assert data.endswith(b"Open it at the portal.\r\n") and b"DKIM-Signature" not in data
    assert "does not open" in caplog.text
    # a From dkimpy or the parser cannot make sense of: sent as it is
    odd = NOTICE.replace(
        b"From: Acme notices <notices@acme.example>", "From: Ünï <ü@ä.example>".encode()
    )
    assert await _post(svc, tid, odd) == odd
