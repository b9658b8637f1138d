"""The pipeline's policy step on both databases: keys pick the method, triggers upgrade,
holds stand unless released, decisions are recorded, a broken policy raises."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from core.accounts.tenants import create_tenant
from core.ids import new_id
from core.models import Message, RecipientKey, Tenant
from core.policy import PolicyError, parse_policy
from core.policy.models import PolicyDecision, TenantPolicy
from core.policy.store import set_policy
from core.services import Services
from gateway.pipeline.decide import decide, record
from tests.core.policy.mail import mail

POLICY = """
rules:
  - name: cards
    when: {detector: credit_card}
    action: encrypt
  - name: forced
    when: {recipient: forced@*}
    action: encrypt
    method: smime
  - name: lawyers
    when: {recipient_domain: lawfirm.example}
    action: require_tls
  - name: zips
    when: {attachment_extension: zip}
    action: hold
  - name: exe
    when: {attachment_type: exe}
    action: reject
"""
CARD = "4111 1111 1111 1111"


async def _setup(services: Services) -> Tenant:
    async with services.db.session() as s:
        creds = await create_tenant(s, services.keyring, "Acme", ["acme.example"])
        await set_policy(s, creds.tenant_id, parse_policy(POLICY), "test")
        for kind, email in (
            ("pgp", "pgp@x.example"),
            ("smime", "smime@x.example"),
            ("pgp", "both@x.example"),
            ("smime", "both@x.example"),
        ):
            s.add(
                RecipientKey(
                    id=new_id("k_"),
                    tenant_id=creds.tenant_id,
                    kind=kind,
                    email=email,
                    fingerprint=new_id(),
                    material=b"-",
                )
            )
        await s.commit()
        tenant = await s.get(Tenant, creds.tenant_id)
        assert tenant is not None
        return tenant


async def _decide(services: Services, tenant: Tenant, raw: bytes, rcpts: list[str], **kw):  # noqa: ANN202
    async with services.db.session() as s:
        return await decide(
            services,
            s,
            tenant,
            raw=raw,
            mail_from="alice@acme.example",
            recipients=rcpts,
            trigger_reason=kw.pop("trigger", None),
            **kw,
        )


async def test_auto_method_follows_the_recipients_keys(services: Services) -> None:
    tenant = await _setup(services)
    rcpts = [
        "pgp@x.example",
        "smime@x.example",
        "both@x.example",
        "none@x.example",
        "forced@x.example",
    ]
    v = await _decide(services, tenant, mail(body=f"card {CARD}"), rcpts)
    assert {r: v[r].disposition for r in rcpts} == {
        "pgp@x.example": "pgp",
        "smime@x.example": "smime",
        "both@x.example": "pgp",
        "none@x.example": "portal",
        "forced@x.example": "portal",
    }
    assert v["none@x.example"].rule == "cards" and "cards" in v["none@x.example"].reason
    forced = await _decide(services, tenant, mail(), ["forced@x.example"])
    # a forced method stands even without a key: the pipeline fails closed
    assert (forced["forced@x.example"].disposition, forced["forced@x.example"].method) == (
        "smime",
        "smime",
    )


@pytest.mark.parametrize(
    ("raw", "rcpt", "plain", "triggered"),
    [
        (mail(), "bob@partner.example", "clear", "portal"),
        (mail(), "ann@lawfirm.example", "tls", "portal"),
        (
            mail(attachments=[("a.zip", "application/zip", b"PK\x05\x06" + bytes(18))]),
            "bob@partner.example",
            "hold",
            "hold",
        ),
        (
            mail(attachments=[("a.bin", "application/octet-stream", b"MZ\x90\x00")]),
            "bob@partner.example",
            "reject",
            "reject",
        ),
    ],
    ids=["pass", "require_tls", "hold", "reject"],
)
async def test_trigger_upgrades_pass_and_tls_but_not_hold_or_reject(
    services: Services, raw: bytes, rcpt: str, plain: str, triggered: str
) -> None:
    tenant = await _setup(services)
    assert (await _decide(services, tenant, raw, [rcpt]))[rcpt].disposition == plain
    v = (await _decide(services, tenant, raw, [rcpt], trigger="subject keyword [secure]"))[rcpt]
    assert v.disposition == triggered
    if triggered == "portal":
        assert (v.action, v.method) == ("encrypt", "auto")
        assert v.explanation["trigger"] == "subject keyword [secure]"


async def test_released_recipient_is_decided_again_without_hold_rules(services: Services) -> None:
    tenant = await _setup(services)
    raw = mail(
        body=f"{CARD}", attachments=[("a.zip", "application/zip", b"PK\x05\x06" + bytes(18))]
    )
    raw_nocard = mail(attachments=[("a.zip", "application/zip", b"PK\x05\x06" + bytes(18))])
    rcpts = ["bob@partner.example", "carl@partner.example"]
    v = await _decide(services, tenant, raw_nocard, rcpts, released={"Bob@partner.example"})
    assert (v["bob@partner.example"].disposition, v["carl@partner.example"].disposition) == (
        "clear",
        "hold",
    )
    assert v["bob@partner.example"].explanation["released_from"] == "zips"
    v = await _decide(services, tenant, raw, rcpts, released={"bob@partner.example"})
    assert v["bob@partner.example"].disposition == "portal"  # cards comes before zips anyway


async def test_record_writes_one_row_per_recipient(services: Services) -> None:
    tenant = await _setup(services)
    v = await _decide(services, tenant, mail(body=CARD), ["pgp@x.example", "bob@partner.example"])
    async with services.db.session() as s:
        msg = Message(
            id=new_id(), tenant_id=tenant.id, mail_from="alice@acme.example", raw_object_id="x"
        )
        s.add(msg)
        await s.flush()
        await record(s, msg.id, tenant.id, v)
        await s.commit()
        rows = (
            (await s.execute(select(PolicyDecision).order_by(PolicyDecision.rcpt))).scalars().all()
        )
    assert [(r.rcpt, r.action, r.method, r.disposition, r.rule) for r in rows] == [
        ("bob@partner.example", "encrypt", "auto", "portal", "cards"),
        ("pgp@x.example", "encrypt", "auto", "pgp", "cards"),
    ]
    explanation = json.loads(rows[0].explanation)
    assert explanation["detectors"] == {"credit_card": 1}
    assert "4111" not in rows[0].explanation


async def test_a_policy_that_cannot_be_evaluated_raises(services: Services) -> None:
    tenant = await _setup(services)
    async with services.db.session() as s:
        row = await s.get(TenantPolicy, tenant.id)
        assert row is not None
        row.document = "{not json"
        await s.commit()
    with pytest.raises(PolicyError):
        await _decide(services, tenant, mail(), ["bob@partner.example"])
