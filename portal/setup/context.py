"""What a tenant's setup page shows, for ``/admin/setup`` and the partner console's
per-tenant setup page alike: the tenant's values (domains, allowed networks, connector
tokens, the gateway's host and port), the PowerShell and Google Workspace steps filled in
with them, and the live check. Both pages render ``setup/_steps.html`` and
``setup/_check.html`` with :func:`setup_context`."""

from __future__ import annotations

from typing import Any

from core.accounts.connector_tokens import list_tokens, token_id
from core.accounts.domains import tenant_domains
from core.accounts.networks import tenant_networks
from core.models import Tenant
from core.services import Services
from core.setup.checks import read_check
from portal.setup.commands import (
    INBOUND_NAME,
    OUTBOUND_NAME,
    RULE_NAME,
    exchange_endpoint,
    gateway_of,
    powershell,
)

POLL_SECONDS = 1.5


async def setup_context(
    services: Services,
    tenant: Tenant,
    *,
    new_token: str = "",
    base: str = "/admin/setup",
    settings_url: str = "/admin/settings",
) -> dict[str, Any]:
    """The template context of a tenant's setup page. ``new_token``: a token just issued,
    shown once and filled into the PowerShell; ``base``: the page's own path (the check's
    and the tokens' forms post below it: ``{base}/check``, ``{base}/tokens``,
    ``{base}/tokens/{id}/revoke``); ``settings_url``: where the tenant's networks and next
    hop are changed."""
    async with services.db.session() as s:
        domains = await tenant_domains(s, tenant.id)
        networks = await tenant_networks(s, tenant.id)
        tokens = await list_tokens(s, tenant.id)
        check = await read_check(s, tenant.id)
    gw = gateway_of(services.settings)
    return {
        "setup_tenant": tenant,
        "setup_base": base,
        "settings_url": settings_url,
        "domains": domains,
        "networks": networks,
        "public_networks": [n for n in networks if not n.private],
        "tokens": [(token_id(t), t) for t in tokens],
        "new_token": new_token,
        "gateway": gw,
        "exchange_endpoint": exchange_endpoint(domains, tenant.relay or ""),
        "relay": tenant.relay or "",
        "powershell": powershell(gw, new_token),
        "outbound_name": OUTBOUND_NAME,
        "inbound_name": INBOUND_NAME,
        "rule_name": RULE_NAME,
        "check": check,
        "poll_seconds": POLL_SECONDS,
    }
