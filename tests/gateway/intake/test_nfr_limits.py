"""A not-for-resale tenant held to its partner's agreement at intake (issue 14, item 1), on
both databases: under the monthly message limit mail is accepted; at the limit the next
message waits at the sender with ``451 4.7.1`` saying why (nothing is lost); converting the
tenant to paid lifts the limit at once. The agreement's user limit refuses one user more."""

from __future__ import annotations

import smtplib

import pytest

from core.accounts.partners import create_partner
from core.accounts.tenants import get_tenant
from core.accounts.trials import change_plan
from core.accounts.users import add_user
from core.errors import PermanentError
from core.services import Services
from tests.gateway.conftest import asend, make_message, make_tenant


async def test_nfr_message_and_user_limits(gw_services: Services, gateway) -> None:  # noqa: ANN001
    async with gw_services.db.session() as s:
        p = await create_partner(s, "Northwind IT")
        p.nfr_max_messages, p.nfr_max_users = 2, 1
        await s.commit()
        partner_id = p.id
    t = await make_tenant(gw_services, plan="nfr", partner_id=partner_id)
    login = (t.username, t.password)
    for n in range(2):
        await asend(gateway, make_message(message_id=f"<n{n}@acme.example>"),
                    "alice@acme.example", ["bob@partner.example"], login=login)  # fmt: skip
    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        await asend(
            gateway, make_message(), "alice@acme.example", ["bob@partner.example"], login=login
        )
    assert refused.value.smtp_code == 451
    assert (
        b"4.7.1" in refused.value.smtp_error and b"2 messages a month" in refused.value.smtp_error
    )
    async with gw_services.db.session() as s:
        tenant = await get_tenant(s, t.id)
        await add_user(s, tenant, "one@acme.example", "admin")
        with pytest.raises(PermanentError, match="allows 1 users"):
            await add_user(s, tenant, "two@acme.example", "sender")
        await change_plan(s, tenant, "paid", "test")
        await s.commit()
    await asend(gateway, make_message(message_id="<n3@acme.example>"), "alice@acme.example",
                ["bob@partner.example"], login=login)  # fmt: skip
