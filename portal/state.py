"""What the portal's handlers share: settings, services, pages and the keys derived for it."""

from __future__ import annotations

import dataclasses

from starlette.requests import Request

from core.config.settings import Settings
from core.services import Services
from core.storage.plain_cache import PlainCache
from portal.client import TrustedProxies
from portal.pages import Pages
from portal.security import origin_of
from portal.view_log import ViewLog


@dataclasses.dataclass
class PortalState:
    settings: Settings
    services: Services
    pages: Pages
    csrf_key: bytes
    code_key: bytes
    origins: tuple[str, ...]
    proxies: TrustedProxies = TrustedProxies()
    views: ViewLog | None = None  # page views for the audit log, written in batches
    # decrypted metadata and text parts the message page shows again and again; every hit
    # is checked against its object's row in the same request (core.storage.plain_cache)
    plain: PlainCache = dataclasses.field(default_factory=PlainCache)

    @classmethod
    def build(cls, settings: Settings, services: Services, pages: Pages) -> PortalState:
        return cls(
            settings=settings,
            services=services,
            pages=pages,
            csrf_key=services.root_key.derive("portal-csrf"),
            code_key=services.root_key.derive("portal-code"),
            origins=(origin_of(settings.portal_base_url),),
            proxies=TrustedProxies.parse(settings.portal_trusted_proxies),
            views=ViewLog(services),
        )


def portal(request: Request) -> PortalState:
    return request.app.state.portal


def client_ip(request: Request) -> str:
    """The client's address, the one every rate limit and audit row uses: the TCP peer, or
    what a trusted proxy says it is (:mod:`portal.client`)."""
    return portal(request).proxies.client_address(request.scope)
