"""Gateway fixtures: a self-signed certificate, a capturing relay sink that can be told to
answer 451 or 550 (the shape of aiosmtpd's own tests and Mailman's testing/mta.py), a
tenant, and a real gateway on a loopback port."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import smtplib
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP as AioSMTP
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from core.accounts.tenants import create_tenant, get_tenant
from core.config.settings import Settings
from core.services import Services
from tests.conftest import make_settings


def write_self_signed(directory: Path) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "smtp.crt", directory / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


@dataclasses.dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes


class Sink:
    """A relay that records what it is given. ``data_replies`` are used one per DATA
    (then 250); ``rcpt_replies`` answer RCPT for an address (every time)."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.data_replies: list[str] = []
        self.rcpt_replies: dict[str, str] = {}
        self.host = "127.0.0.1"
        self.port = 0
        self.arrived = asyncio.Event()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: ANN001
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001
        if self.data_replies:
            return self.data_replies.pop(0)
        self.messages.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
        )
        self.arrived.set()
        return "250 2.0.0 Ok: queued"

    async def wait_for(self, count: int, timeout: float = 10) -> list[Received]:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.messages) < count:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"sink got {len(self.messages)} messages, wanted {count}")
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), remaining)
            except TimeoutError:
                pass
        return self.messages


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    s = Sink()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: AioSMTP(s, hostname="sink.test", enable_SMTPUTF8=True), "127.0.0.1", 0
    )
    s.port = server.sockets[0].getsockname()[1]
    yield s
    server.close()
    await server.wait_closed()


@pytest.fixture
def gw_settings(tmp_path: Path, db_url: str, sink: Sink) -> Settings:
    cert, key = write_self_signed(tmp_path / "tls")
    return make_settings(
        tmp_path,
        db_url,
        smtp_listen="127.0.0.1:0",
        smtp_hostname="gw.test",
        smtp_tls_cert=cert,
        smtp_tls_key=key,
        relay=f"127.0.0.1:{sink.port}",
        relay_tls="none",
        portal_base_url="https://portal.test",
    )


@pytest.fixture
async def gw_services(gw_settings: Settings) -> AsyncIterator[Services]:
    svc = Services.open(gw_settings)
    yield svc
    await svc.close()


@dataclasses.dataclass
class TenantInfo:
    id: str
    username: str
    password: str
    token: str


async def make_tenant(
    services: Services,
    name: str = "Acme",
    domains: tuple[str, ...] = ("acme.example",),
    networks: tuple[tuple[str, bool], ...] = (),
    **attrs: Any,
) -> TenantInfo:
    async with services.db.session() as s:
        creds = await create_tenant(s, services.keyring, name, list(domains), networks=networks)
        await s.flush()
        tenant = await get_tenant(s, creds.tenant_id)
        for key, value in attrs.items():
            setattr(tenant, key, value)
        await s.commit()
    return TenantInfo(
        creds.tenant_id, creds.smtp_username, creds.smtp_password, creds.connector_token
    )


@pytest.fixture
async def tenant(gw_services: Services) -> TenantInfo:
    return await make_tenant(gw_services)


@pytest.fixture
async def gateway(gw_services: Services) -> AsyncIterator[tuple[str, int]]:
    from gateway.intake.handler import build_gateway

    gw = build_gateway(gw_services)
    address = await gw.start()
    yield address
    await gw.stop(drain_timeout=1)


def client_tls() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def smtp_send(
    address: tuple[str, int],
    message: bytes,
    mail_from: str,
    rcpts: list[str],
    login: tuple[str, str] | None = None,
    starttls: bool = True,
) -> Any:
    """Send with stdlib smtplib (blocking: call it in a thread); returns what sendmail
    returns, or raises smtplib's exception carrying the reply."""
    with smtplib.SMTP(address[0], address[1], timeout=10) as c:
        c.ehlo("client.test")
        if starttls:
            c.starttls(context=client_tls())
            c.ehlo("client.test")
        if login:
            c.login(*login)
        return c.sendmail(mail_from, rcpts, message)


async def asend(
    address: tuple[str, int], message: bytes, mail_from: str, rcpts: list[str], **kw: Any
) -> Any:
    return await asyncio.to_thread(smtp_send, address, message, mail_from, rcpts, **kw)


def make_message(
    subject: str = "Hello",
    body: str = "Hi there.\r\n",
    sender: str = "alice@acme.example",
    to: str = "bob@partner.example",
    extra: str = "",
    message_id: str = "<m1@acme.example>",
) -> bytes:
    return (
        f"From: Alice <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: {message_id}\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n{extra}"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    ).encode()


Sender = Callable[..., Any]


def whole_reads(services: Services, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the objects ``services.vault`` reads whole from now on (the large path
    must never read a large original whole)."""
    read_whole: list[str] = []
    real_read = services.vault.read

    async def read(session, tenant_id, object_id, **kw):  # noqa: ANN001, ANN202
        read_whole.append(object_id)
        return await real_read(session, tenant_id, object_id, **kw)

    monkeypatch.setattr(services.vault, "read", read)
    return read_whole
