"""Portal test helpers: a TestClient over the app (https, so ``Secure`` cookies work) and
data sealed by the test itself, the way the gateway's pipeline would store it."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx2
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from core.accounts.tenants import create_tenant, get_tenant
from core.config.settings import Settings
from core.hashing import sha256_hex
from core.ids import new_id, new_token, queue_id
from core.models import Message, OutboxItem, PortalAccess
from core.portal_message import Part, PortalMessage
from core.services import Services
from portal.app import create_app

BASE = "https://testserver"
T = TypeVar("T")


@dataclasses.dataclass
class Sealed:
    message_id: str
    tenant_id: str
    tokens: dict[str, str]  # recipient -> link token
    attachments: list[bytes]


async def make_tenant(services: Services, name: str, domain: str, **fields: Any) -> str:
    async with services.db.session() as s:
        creds = await create_tenant(
            s, services.keyring, name, [domain], display_name=fields.pop("display_name", "")
        )
        tenant = await get_tenant(s, creds.tenant_id)
        assert tenant is not None
        for key, value in fields.items():
            setattr(tenant, key, value)
        await s.commit()
    return creds.tenant_id


async def seal_message(
    services: Services,
    tenant_id: str,
    *,
    recipients: list[str],
    subject: str = "Quarterly figures",
    sender: str = "Alice Sender <alice@acme.example>",
    text: str | None = "Hello Bob,\nthe figures are attached.\n",
    html: str | None = None,
    attachments: list[tuple[str, str, bytes]] = (),  # type: ignore[assignment]
    expires_in: float = 86400.0,
    revoked: bool = False,
    date: str = "Tue, 04 Mar 2025 10:15:00 +0000",
) -> Sealed:
    """Seal a message the way the gateway's pipeline does; return its id and link tokens."""
    import hashlib

    vault = services.vault
    async with services.db.session() as s:
        raw = await vault.seal(s, tenant_id, b"From: x\r\n\r\nraw original\r\n", "raw")
        text_id = (await vault.seal(s, tenant_id, text.encode(), "part")).id if text else None
        html_id = (await vault.seal(s, tenant_id, html.encode(), "part")).id if html else None
        parts = []
        for filename, ctype, data in attachments:
            obj = await vault.seal(s, tenant_id, data, "part")
            parts.append(Part(obj.id, filename, ctype, len(data), hashlib.sha256(data).hexdigest()))
        pm = PortalMessage(
            subject=subject,
            sender=sender,
            sender_name=sender.split("<")[0].strip(),
            to=tuple(recipients),
            cc=(),
            date=date,
            message_id_header=f"<{new_id()}@acme.example>",
            text_object_id=text_id,
            html_object_id=html_id,
            attachments=tuple(parts),
        )
        meta = await vault.seal(s, tenant_id, pm.to_json(), "meta")
        msg = Message(
            id=queue_id(),
            tenant_id=tenant_id,
            mail_from="alice@acme.example",
            state="processed",
            disposition="portal",
            raw_object_id=raw.id,
            meta_object_id=meta.id,
            processed_at=time.time(),
        )
        s.add(msg)
        await s.flush()
        tokens = {}
        for rcpt in recipients:
            token = new_token(32)
            tokens[rcpt] = token
            s.add(
                PortalAccess(
                    id=new_id("a_"),
                    token_hash=sha256_hex(token),
                    message_id=msg.id,
                    tenant_id=tenant_id,
                    recipient=rcpt,
                    expires_at=time.time() + expires_in,
                    revoked=revoked,
                )
            )
        await s.commit()
    return Sealed(msg.id, tenant_id, tokens, [a[2] for a in attachments])


async def code_mails(services: Services) -> list[tuple[OutboxItem, email.message.EmailMessage]]:
    """Every code email in the outbox, oldest first, opened from its sealed object."""
    async with services.db.session() as s:
        rows = (
            (
                await s.execute(
                    select(OutboxItem)
                    .where(OutboxItem.kind == "code")
                    .order_by(OutboxItem.created_at, OutboxItem.id)
                )
            )
            .scalars()
            .all()
        )
        out = []
        for item in rows:
            assert item.tenant_id is not None
            data = await services.vault.read(s, item.tenant_id, item.object_id)
            msg = email.message_from_bytes(data, policy=email.policy.default)
            out.append((item, msg))
    return out


_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    m = _CSRF.search(html)
    assert m, "no CSRF field on the page"
    return m.group(1)


class Browser:
    """Requests through the world's client with a cookie jar of its own: a second TestClient
    would run the app on another event loop, where the database pool's connections fail."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.cookies = httpx2.Cookies()

    def _do(self, method: str, *args: Any, **kwargs: Any) -> httpx2.Response:
        saved = self.client.cookies
        self.client.cookies = self.cookies
        try:
            return getattr(self.client, method)(*args, **kwargs)
        finally:
            self.cookies = self.client.cookies
            self.client.cookies = saved

    def get(self, *args: Any, **kwargs: Any) -> httpx2.Response:
        return self._do("get", *args, **kwargs)

    def post(self, *args: Any, **kwargs: Any) -> httpx2.Response:
        return self._do("post", *args, **kwargs)


@dataclasses.dataclass
class World:
    client: TestClient
    services: Services
    settings: Settings

    def run(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` on the app's event loop (the database engine lives there)."""

        async def call() -> T:
            return await fn(*args, **kwargs)

        return self.client.portal.call(call)

    def tenant(self, name: str, domain: str, **fields: Any) -> str:
        return self.run(make_tenant, self.services, name, domain, **fields)

    def seal(self, tenant_id: str, **kwargs: Any) -> Sealed:
        return self.run(seal_message, self.services, tenant_id, **kwargs)

    def codes(self) -> list[tuple[OutboxItem, email.message.EmailMessage]]:
        return self.run(code_mails, self.services)

    def latest_code(self) -> str:
        _item, msg = self.codes()[-1]
        body = msg.get_body(("plain",))
        assert body is not None
        m = re.search(r"\b(\d{6})\b", body.get_content())
        assert m, "no code in the code email"
        return m.group(1)

    def new_client(self) -> Browser:
        """A second browser (its own cookies) against the same app, on the same loop."""
        return Browser(self.client)

    # --- the recipient's steps, each returning the response --------------------------------

    def open_link(self, token: str, client: TestClient | Browser | None = None):
        return (client or self.client).get(f"/m/{token}")

    def request_code(self, token: str, client: TestClient | Browser | None = None):
        c = client or self.client
        page = c.get(f"/m/{token}")
        assert page.status_code == 200, page.text
        return c.post(f"/m/{token}/code", data={"csrf": csrf_of(page.text)})

    def submit_code(self, token: str, code: str, client: TestClient | Browser | None = None):
        c = client or self.client
        page = c.get(f"/m/{token}")
        return c.post(
            f"/m/{token}/verify",
            data={"csrf": csrf_of(page.text), "code": code},
            follow_redirects=False,
        )

    def sign_in(self, token: str, client: TestClient | Browser | None = None):
        """Token → code → verified session; returns the verify response (303)."""
        r = self.request_code(token, client)
        assert r.status_code == 200, r.text
        r = self.submit_code(token, self.latest_code(), client)
        assert r.status_code == 303, r.text
        return r


@pytest.fixture
def world(settings: Settings, services: Services) -> Iterator[World]:
    app = create_app(settings, services)
    with TestClient(app, base_url=BASE) as client:
        w = World(client, services, settings)
        yield w
        # the engine's connections belong to this loop: close them here
        client.portal.call(services.db.dispose)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """``(base URL, settings)`` of the portal served on a loopback port (browser tests)."""
    from tests.portal.served import serve_portal

    with serve_portal(tmp_path) as running:
        yield running
