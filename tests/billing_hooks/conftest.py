"""Billing test helpers: the portal app with a webhook secret, signed deliveries, and
tenants/partners to bill."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx2
import pytest
from starlette.testclient import TestClient

from billing_hooks.signing import HEADER, sign
from core.accounts.partners import create_partner
from core.accounts.tenants import create_tenant
from core.config.settings import Settings
from core.services import Services
from portal.app import create_app
from tests.conftest import make_settings

SECRET = "whsec_test_0123456789"
T = TypeVar("T")


def billing_settings(tmp_path: Path, db_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "billing_webhook_secret": SECRET,
        "billing_pay_url": "https://pay.example.test/acme",
    }
    values.update(overrides)
    return make_settings(tmp_path, db_url, **values)


def event(event_id: str, type_: str, **data: Any) -> bytes:
    return json.dumps(
        {"id": event_id, "type": type_, "created": int(time.time()), "data": data}
    ).encode()


@dataclasses.dataclass
class Billing:
    client: TestClient
    services: Services
    settings: Settings

    def run(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        async def call() -> T:
            return await fn(*args, **kwargs)

        return self.client.portal.call(call)

    def post(
        self,
        body: bytes,
        *,
        secret: str = SECRET,
        at: int | None = None,
        header: str | None = None,
    ) -> httpx2.Response:
        value = header if header is not None else sign(secret, body, at)
        headers = {"Content-Type": "application/json"}
        if value:
            headers[HEADER] = value
        return self.client.post("/billing/webhook", content=body, headers=headers)

    def send(self, event_id: str, type_: str, **data: Any) -> httpx2.Response:
        r = self.post(event(event_id, type_, **data))
        assert r.status_code == 200, r.text
        return r

    def tenant(self, name: str, domain: str, partner: str | None = None) -> str:
        async def make() -> str:
            async with self.services.db.session() as s:
                creds = await create_tenant(
                    s, self.services.keyring, name, [domain], partner=partner
                )
                await s.commit()
                return creds.tenant_id

        return self.run(make)

    def partner(self, name: str) -> str:
        async def make() -> str:
            async with self.services.db.session() as s:
                p = await create_partner(s, name)
                await s.commit()
                return p.id

        return self.run(make)

    def query(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        async def call() -> T:
            async with self.services.db.session() as s:
                return await fn(s)

        return self.run(call)


@pytest.fixture
def billing(tmp_path: Path, db_url: str) -> Iterator[Billing]:
    settings = billing_settings(tmp_path, db_url)
    services = Services.open(settings)
    app = create_app(settings, services)
    with TestClient(app, base_url="https://testserver") as client:
        yield Billing(client, services, settings)
        client.portal.call(services.close)
