"""The live check through the real gateway on both databases: a connector message with the
token from an allowed network ends ``ok`` with every step (arrived, identified by token,
decided, passed, handed back with 250); each refusal names its fault and is attributed to
the tenant whose check is open (no token, a token from outside the networks, a sender of
another domain, an address outside every network); the next hop's 5xx ends it ``fault``;
a check already watching a message ignores other sessions; and mail of tenants without a
check is untouched."""

from __future__ import annotations

import smtplib

import pytest

from core.services import Services
from core.setup import checks
from core.setup.watch import watch_of
from gateway.worker import run_once
from tests.gateway.conftest import Sink, asend, make_message, make_tenant

pytestmark = pytest.mark.timeout(60)


async def _open(services: Services, tenant_id: str) -> None:
    async with services.db.session() as s:
        await checks.open_check(s, tenant_id, "admin@m365.example")
        await s.commit()
    watch_of(services.db).stale()  # as if the refresh interval had passed


async def _view(services: Services, tenant_id: str) -> checks.CheckView:
    async with services.db.session() as s:
        view = await checks.read_check(s, tenant_id)
    assert view is not None
    return view


async def _refused(address, message: bytes, mail_from: str) -> str:  # noqa: ANN001
    try:
        await asend(address, message, mail_from, ["bob@partner.example"])
    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError) as exc:
        return str(exc)
    raise AssertionError("the message was accepted")


async def _settle(services: Services, tenant_id: str) -> checks.CheckView:
    """Wait for the background task that records a refusal."""
    import asyncio

    for _ in range(100):
        view = await _view(services, tenant_id)
        if view.state != checks.WAITING:
            return view
        await asyncio.sleep(0.05)
    return view


async def test_connector_message_ends_green(gateway, gw_services: Services, sink: Sink) -> None:
    t = await make_tenant(
        gw_services, "M365", ("m365.example",), networks=(("127.0.0.1/32", False),)
    )
    await _open(gw_services, t.id)
    msg = make_message(sender="a@m365.example", extra=f"X-Sealmail-Tenant-Token: {t.token}\r\n")
    await asend(gateway, msg, "a@m365.example", ["bob@partner.example"])
    view = await _view(gw_services, t.id)
    assert [s.step for s in view.steps] == [checks.ARRIVED, checks.IDENTIFIED]
    assert "127.0.0.1" in view.steps[0].detail and "a@m365.example" in view.steps[0].detail
    assert "connector token" in view.steps[1].detail and view.message_id
    await run_once(gw_services)
    await sink.wait_for(1)
    view = await _view(gw_services, t.id)
    assert view.state == checks.OK, view
    assert [s.step for s in view.steps] == [
        checks.ARRIVED,
        checks.IDENTIFIED,
        checks.DECIDED,
        checks.PASSED,
        checks.HANDED_BACK,
    ]
    assert all(s.ok for s in view.steps)
    assert "250" in view.steps[-1].detail
    assert "Hi there" not in " ".join(s.detail for s in view.steps)  # no content
    # a second message is not the check's: nothing more is recorded
    await asend(gateway, msg, "a@m365.example", ["bob@partner.example"])
    assert len((await _view(gw_services, t.id)).steps) == 5


@pytest.mark.parametrize(
    ("token", "sender", "fault", "named"),
    [
        ("", "a@m365.example", checks.NO_TOKEN, "no X-Sealmail-Tenant-Token"),
        ("wrong", "a@m365.example", checks.UNKNOWN_TOKEN, "not a connector token"),
        ("good", "a@elsewhere.example", checks.SENDER_DOMAIN, "elsewhere.example"),
    ],
)
async def test_refusals_at_data_name_the_fault(
    gateway, gw_services: Services, token: str, sender: str, fault: str, named: str
) -> None:
    t = await make_tenant(
        gw_services, "M365", ("m365.example",), networks=(("127.0.0.1/32", False),)
    )
    await make_tenant(gw_services, "Other", ("elsewhere.example",))
    await _open(gw_services, t.id)
    value = t.token if token == "good" else token
    extra = f"X-Sealmail-Tenant-Token: {value}\r\n" if value else ""
    reply = await _refused(gateway, make_message(sender=sender, extra=extra), sender)
    assert "relay access denied" in reply
    view = await _settle(gw_services, t.id)
    assert view.state == checks.FAULT
    assert [s.step for s in view.steps] == [checks.ARRIVED, fault]
    assert named in view.steps[-1].detail
    if fault == checks.SENDER_DOMAIN:
        assert "m365.example" in view.steps[-1].detail  # the tenant's own domains


async def test_token_from_outside_the_networks(gateway, gw_services: Services) -> None:
    """The client is in some tenant's networks (so DATA is reached), not in this one's."""
    t = await make_tenant(
        gw_services, "M365", ("m365.example",), networks=(("192.0.2.0/24", False),)
    )
    await make_tenant(gw_services, "Near", ("near.example",), networks=(("127.0.0.1/32", False),))
    await _open(gw_services, t.id)
    msg = make_message(sender="a@m365.example", extra=f"X-Sealmail-Tenant-Token: {t.token}\r\n")
    await _refused(gateway, msg, "a@m365.example")
    view = await _settle(gw_services, t.id)
    assert view.steps[-1].step == checks.NETWORK
    assert "127.0.0.1" in view.steps[-1].detail and "192.0.2.0/24" in view.steps[-1].detail


async def test_address_outside_every_network_by_sender_domain(
    gateway, gw_services: Services
) -> None:
    t = await make_tenant(
        gw_services, "M365", ("m365.example",), networks=(("192.0.2.0/24", False),)
    )
    await _open(gw_services, t.id)
    await _refused(gateway, make_message(sender="a@m365.example"), "a@m365.example")
    view = await _settle(gw_services, t.id)
    assert view.steps[-1].step == checks.NETWORK and "192.0.2.0/24" in view.steps[-1].detail


async def test_next_hop_refusal_is_a_fault(gateway, gw_services: Services, sink: Sink) -> None:
    t = await make_tenant(gw_services, "M365", ("m365.example",))
    await _open(gw_services, t.id)
    sink.data_replies.append("550 5.7.64 TenantAttribution; Relay Access Denied")
    msg = make_message(sender="a@m365.example")
    await asend(
        gateway, msg, "a@m365.example", ["bob@partner.example"], login=(t.username, t.password)
    )
    await run_once(gw_services)
    view = await _view(gw_services, t.id)
    assert view.state == checks.FAULT
    assert view.steps[1].detail.startswith("Identified by SMTP sign-in")
    assert view.steps[-1].step == checks.REFUSED and "5.7.64" in view.steps[-1].detail


async def test_no_check_no_rows(gateway, gw_services: Services, sink: Sink) -> None:
    t = await make_tenant(gw_services, "M365", ("m365.example",))
    msg = make_message(sender="a@m365.example")
    await asend(
        gateway, msg, "a@m365.example", ["bob@partner.example"], login=(t.username, t.password)
    )
    await run_once(gw_services)
    await sink.wait_for(1)
    async with gw_services.db.session() as s:
        assert await checks.read_check(s, t.id) is None


async def test_open_again_restarts(gw_services: Services) -> None:
    t = await make_tenant(gw_services, "M365", ("m365.example",))
    await _open(gw_services, t.id)
    first = (await _view(gw_services, t.id)).id
    await _open(gw_services, t.id)
    again = await _view(gw_services, t.id)
    assert again.id != first and again.state == checks.WAITING
    assert set(await watch_of(gw_services.db).open_checks(gw_services.db)) == {t.id}
    async with gw_services.db.session() as s:
        from core.setup.models import SetupCheck

        old = await s.get(SetupCheck, first)
        assert old is not None and old.outcome == checks.EXPIRED
        # a check past its 15 minutes reads as expired
        row = await s.get(SetupCheck, again.id)
        assert row is not None
        row.expires_at = 1.0
        await s.commit()
    assert (await _view(gw_services, t.id)).state == checks.EXPIRED


async def test_sealed_message_is_handed_back_as_its_notice(
    gateway, gw_services: Services, sink: Sink
) -> None:
    t = await make_tenant(gw_services, "M365", ("m365.example",))
    await _open(gw_services, t.id)
    msg = make_message(subject="[secure] the contract", sender="a@m365.example")
    await asend(
        gateway, msg, "a@m365.example", ["bob@partner.example"], login=(t.username, t.password)
    )
    await run_once(gw_services)
    await sink.wait_for(1)
    view = await _view(gw_services, t.id)
    assert view.state == checks.OK, view
    steps = [s.step for s in view.steps]
    assert steps == [
        checks.ARRIVED,
        checks.IDENTIFIED,
        checks.DECIDED,
        checks.SEALED,
        checks.HANDED_BACK,
    ]
    assert "encrypt" in view.steps[2].detail
    assert "contract" not in " ".join(s.detail for s in view.steps)
