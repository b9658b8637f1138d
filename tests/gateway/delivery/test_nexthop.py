"""Next hop: per-tenant relay and direct MX delivery (``relay = "mx"``).

Everything on loopback: a tiny DNS server built with dnspython on a UDP port (the
resolver is pointed at it with ``dns_resolver``), aiosmtpd sinks as MX hosts on
127.0.0.x with one port (``mx_port``), and a loopback address with nothing listening as a
host that refuses.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from aiosmtpd.smtp import SMTP as AioSMTP
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from core import outbox
from core.config.settings import Settings
from core.config.values import parse_relay
from core.errors import ConfigError
from core.models import OutboxItem, OutboxRecipient, Tenant
from core.services import Services
from gateway.delivery.drain import deliver_due
from gateway.delivery.nexthop import NextHops, hop_for
from gateway.worker import run_once, worker_id
from tests.conftest import make_settings
from tests.gateway.conftest import Sink, asend, make_message, make_tenant

pytestmark = pytest.mark.timeout(60)

FROM = "alice@acme.example"


# --- a DNS server on loopback ---------------------------------------------------------------


class FakeDns(asyncio.DatagramProtocol):
    """Answers from ``zone``: {name: {type: [rdata text]}}; a name not in the zone is
    NXDOMAIN, a name in ``servfail`` gets SERVFAIL."""

    def __init__(self) -> None:
        self.zone: dict[str, dict[str, list[str]]] = {}
        self.servfail: set[str] = set()
        self.queries: list[tuple[str, str]] = []
        self.transport: Any = None
        self.port = 0

    def add(self, name: str, rdtype: str, *values: str) -> None:
        self.zone.setdefault(name.lower().rstrip(".") + ".", {}).setdefault(rdtype, []).extend(
            values
        )

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.RA
        question = query.question[0]
        name = question.name.to_text().lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, rdtype))
        if name in self.servfail:
            response.set_rcode(dns.rcode.SERVFAIL)
        elif name not in self.zone:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif self.zone[name].get(rdtype):
            response.answer.append(
                dns.rrset.from_text_list(question.name, 60, "IN", rdtype, self.zone[name][rdtype])
            )
        self.transport.sendto(response.to_wire(), addr)


@pytest.fixture
async def fake_dns() -> AsyncIterator[FakeDns]:
    server = FakeDns()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: server, local_addr=("127.0.0.1", 0))
    server.port = transport.get_extra_info("sockname")[1]
    yield server
    transport.close()


# --- MX hosts -------------------------------------------------------------------------------


class MxSink(Sink):
    def __init__(self) -> None:
        super().__init__()
        self.tls: list[bool] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001
        self.tls.append(session.ssl is not None)
        return await super().handle_DATA(server, session, envelope)


class MxFarm:
    """Sinks on 127.0.0.x, all on the same port (the gateway's ``mx_port``)."""

    def __init__(self) -> None:
        self.port = 0
        self.sinks: dict[str, MxSink] = {}
        self._servers: list[asyncio.AbstractServer] = []

    async def start(self, address: str, tls: ssl.SSLContext | None = None) -> MxSink:
        sink = MxSink()
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: AioSMTP(sink, hostname="mx.test", tls_context=tls, require_starttls=False),
            address,
            self.port,
        )
        self.port = server.sockets[0].getsockname()[1]
        sink.host, sink.port = address, self.port
        self.sinks[address] = sink
        self._servers.append(server)
        return sink

    async def close(self) -> None:
        for server in self._servers:
            server.close()
            await server.wait_closed()


@pytest.fixture
async def farm() -> AsyncIterator[MxFarm]:
    f = MxFarm()
    yield f
    await f.close()


def write_pki(directory: Path, names: list[str]) -> tuple[str, str, str]:
    """A test CA and a server certificate for ``names`` and 127.0.0.1: (ca, cert, key)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sealmail next-hop test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    sans.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(sans), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [
                    x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
                    x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH,
                ]
            ),
            False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = directory / "ca.crt", directory / "mx.crt", directory / "mx.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(ca_path), str(cert_path), str(key_path)


def server_tls(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


# --- the gateway side -----------------------------------------------------------------------


def mx_settings(tmp_path: Path, db_url: str, fake: FakeDns, port: int, **kw: Any) -> Settings:
    values: dict[str, Any] = {
        "smtp_hostname": "gw.test",
        "relay": "mx",
        "mx_port": port,
        "dns_resolver": f"127.0.0.1:{fake.port}",
        "relay_timeout": "5s",
    }
    values.update(kw)
    return make_settings(tmp_path, db_url, **values)


async def queue(
    services: Services,
    rcpts: list[str],
    *,
    tenant_id: str | None = None,
    require_tls: bool = False,
    subject: str = "Hello",
) -> str:
    """An outbox item (a clear copy) of a fresh or given tenant; returns the item id."""
    if tenant_id is None:
        tenant_id = (await make_tenant(services)).id
    async with services.db.session() as s:
        raw = make_message(subject=subject, to=", ".join(rcpts))
        obj = await services.vault.seal(s, tenant_id, raw, kind="outbound")
        item = await outbox.enqueue(
            s,
            kind="clear",
            tenant_id=tenant_id,
            mail_from=FROM,
            recipients=rcpts,
            object_id=obj.id,
            lifetime=3600,
        )
        item.require_tls = require_tls
        await s.commit()
        return item.id


async def deliver(services: Services, **kw: Any) -> None:
    hops = NextHops(services.settings, **kw)
    try:
        await deliver_due(services, hops, worker_id())
    finally:
        await hops.close()


async def states(services: Services, item_id: str | None = None) -> dict[str, tuple[str, str]]:
    async with services.db.session() as s:
        stmt = select(OutboxRecipient)
        if item_id is not None:
            stmt = stmt.where(OutboxRecipient.outbox_id == item_id)
        rows = (await s.execute(stmt)).scalars().all()
        return {r.rcpt: (r.state, r.last_reply) for r in rows}


@pytest.fixture
async def mx_env(tmp_path: Path, db_url: str, fake_dns: FakeDns, farm: MxFarm):  # noqa: ANN201
    """Two MX sinks (127.0.0.2, 127.0.0.3) and the services, relay = mx."""
    await farm.start("127.0.0.2")
    await farm.start("127.0.0.3")
    services = Services.open(mx_settings(tmp_path, db_url, fake_dns, farm.port))
    yield services, farm, fake_dns
    await services.close()


# --- tests ----------------------------------------------------------------------------------


def test_hop_for_prefers_the_tenant(tmp_path: Path, db_url: str) -> None:
    settings = make_settings(tmp_path, db_url, relay="10.0.0.1:25")
    assert hop_for("", settings) == "10.0.0.1:25"
    assert hop_for("contoso-com.mail.protection.outlook.com:25", settings).startswith("contoso")
    assert hop_for("mx", settings) == "mx"


async def test_mx_preference_order(mx_env) -> None:  # noqa: ANN001
    services, farm, fake = mx_env
    fake.add("partner.example", "MX", "20 mx2.partner.example.", "10 mx1.partner.example.")
    fake.add("mx1.partner.example", "A", "127.0.0.2")
    fake.add("mx2.partner.example", "A", "127.0.0.3")
    item = await queue(services, ["bob@partner.example", "carol@partner.example"])
    await deliver(services)
    first, second = farm.sinks["127.0.0.2"], farm.sinks["127.0.0.3"]
    assert len(first.messages) == 1 and second.messages == []
    assert sorted(first.messages[0].rcpt_tos) == ["bob@partner.example", "carol@partner.example"]
    assert b"X-Sealmail-Processed:" in first.messages[0].content
    assert {s for s, _ in (await states(services, item)).values()} == {"sent"}


async def test_mx_falls_back_when_the_first_refuses(mx_env) -> None:  # noqa: ANN001
    services, farm, fake = mx_env
    fake.add("partner.example", "MX", "10 dead.partner.example.", "20 mx2.partner.example.")
    fake.add("dead.partner.example", "A", "127.0.0.9")  # nothing listens there
    fake.add("mx2.partner.example", "A", "127.0.0.3")
    item = await queue(services, ["bob@partner.example"])
    await deliver(services)
    assert len(farm.sinks["127.0.0.3"].messages) == 1
    assert (await states(services, item))["bob@partner.example"][0] == "sent"


async def test_connection_reused_per_domain(mx_env) -> None:  # noqa: ANN001
    services, farm, fake = mx_env
    fake.add("partner.example", "MX", "10 mx1.partner.example.")
    fake.add("mx1.partner.example", "A", "127.0.0.2")
    tenant = await make_tenant(services)
    hops = NextHops(services.settings)
    try:
        for n in range(2):
            await queue(services, ["bob@partner.example"], tenant_id=tenant.id, subject=f"n{n}")
            await deliver_due(services, hops, worker_id())
        mx_queries = [q for q in fake.queries if q[1] == "A"]
        assert len(farm.sinks["127.0.0.2"].messages) == 2
        assert len(mx_queries) == 1  # the second message went over the open connection
    finally:
        await hops.close()


async def test_implicit_mx(mx_env) -> None:  # noqa: ANN001
    services, farm, fake = mx_env
    fake.add("plain.example", "A", "127.0.0.3")  # no MX: the domain's own address
    item = await queue(services, ["dan@plain.example"])
    await deliver(services)
    assert len(farm.sinks["127.0.0.3"].messages) == 1
    assert (await states(services, item))["dan@plain.example"][0] == "sent"


async def test_null_mx_bounces(mx_env) -> None:  # noqa: ANN001
    services, farm, fake = mx_env
    fake.add("nomail.example", "MX", "0 .")
    item = await queue(services, ["eve@nomail.example"])
    await deliver(services)
    state, reply = (await states(services, item))["eve@nomail.example"]
    assert state == "bounced" and "5.1.10" in reply
    async with services.db.session() as s:
        dsns = (await s.execute(select(OutboxItem).where(OutboxItem.kind == "dsn"))).all()
    assert len(dsns) == 1  # the sender hears of it
    assert all(not s.messages for s in farm.sinks.values())


async def test_nxdomain_bounces(mx_env) -> None:  # noqa: ANN001
    services, _farm, _fake = mx_env
    item = await queue(services, ["x@no-such-domain.example"])
    await deliver(services)
    state, reply = (await states(services, item))["x@no-such-domain.example"]
    assert state == "bounced" and "5.1.2" in reply


async def test_dns_servfail_defers(mx_env) -> None:  # noqa: ANN001
    services, farm, fake = mx_env
    fake.servfail.add("broken.example.")
    item = await queue(services, ["fay@broken.example"])
    await deliver(services)
    state, reply = (await states(services, item))["fay@broken.example"]
    assert state == "deferred" and reply.startswith("451 4.4.1")
    assert all(not s.messages for s in farm.sinks.values())


async def test_dns_server_down_defers(tmp_path: Path, db_url: str, farm: MxFarm) -> None:
    await farm.start("127.0.0.2")
    dead = FakeDns()
    dead.port = 9  # discard: nothing answers
    settings = mx_settings(tmp_path, db_url, dead, farm.port, relay_timeout="2s")
    services = Services.open(settings)
    try:
        item = await queue(services, ["bob@partner.example"])
        await deliver(services)
        assert (await states(services, item))["bob@partner.example"][0] == "deferred"
    finally:
        await services.close()


async def test_recipients_of_several_domains(mx_env) -> None:  # noqa: ANN001
    """One item, three domains: each domain its own transaction and its own fate."""
    services, farm, fake = mx_env
    fake.add("a.example", "MX", "10 mx1.partner.example.")
    fake.add("b.example", "MX", "10 mx2.partner.example.")
    fake.add("mx1.partner.example", "A", "127.0.0.2")
    fake.add("mx2.partner.example", "A", "127.0.0.3")
    fake.servfail.add("c.example.")
    item = await queue(services, ["x@a.example", "y@b.example", "z@c.example"])
    await deliver(services)
    assert [m.rcpt_tos for m in farm.sinks["127.0.0.2"].messages] == [["x@a.example"]]
    assert [m.rcpt_tos for m in farm.sinks["127.0.0.3"].messages] == [["y@b.example"]]
    got = await states(services, item)
    assert (got["x@a.example"][0], got["y@b.example"][0], got["z@c.example"][0]) == (
        "sent",
        "sent",
        "deferred",
    )


async def test_opportunistic_starttls_in_mx_mode(
    tmp_path: Path, db_url: str, fake_dns: FakeDns, farm: MxFarm
) -> None:
    """An MX offering STARTTLS gets it, even with a certificate nobody vouches for."""
    _ca, cert, key = write_pki(tmp_path / "pki", ["other.name.example"])
    sink = await farm.start("127.0.0.2", server_tls(cert, key))
    fake_dns.add("partner.example", "MX", "10 mx1.partner.example.")
    fake_dns.add("mx1.partner.example", "A", "127.0.0.2")
    services = Services.open(mx_settings(tmp_path, db_url, fake_dns, farm.port))
    try:
        await queue(services, ["bob@partner.example"])
        await deliver(services)
        assert sink.tls == [True]
    finally:
        await services.close()


async def test_require_tls_in_mx_mode(
    tmp_path: Path, db_url: str, fake_dns: FakeDns, farm: MxFarm
) -> None:
    """require_tls: verified against the MX name; an MX without STARTTLS: rerouted."""
    ca, cert, key = write_pki(tmp_path / "pki", ["mx1.partner.example"])
    good = await farm.start("127.0.0.2", server_tls(cert, key))
    plain = await farm.start("127.0.0.3")
    fake_dns.add("partner.example", "MX", "10 mx1.partner.example.")
    fake_dns.add("mx1.partner.example", "A", "127.0.0.2")
    fake_dns.add("plain.example", "MX", "10 mx2.plain.example.")
    fake_dns.add("mx2.plain.example", "A", "127.0.0.3")
    settings = mx_settings(tmp_path, db_url, fake_dns, farm.port, relay_tls_ca_file=ca)
    services = Services.open(settings)
    try:
        tid = (await make_tenant(services)).id
        ok = await queue(services, ["bob@partner.example"], tenant_id=tid, require_tls=True)
        no = await queue(services, ["dan@plain.example"], tenant_id=tid, require_tls=True)
        await deliver(services)
        assert good.tls == [True] and plain.messages == []
        assert (await states(services, ok))["bob@partner.example"][0] == "sent"
        assert (await states(services, no))["dan@plain.example"][0] == "rerouted"
    finally:
        await services.close()


async def test_per_tenant_relay(tmp_path: Path, db_url: str, farm: MxFarm) -> None:
    """Two tenants, two next hops: each tenant's mail reaches its own endpoint."""
    global_sink = await farm.start("127.0.0.2")
    own_sink = await farm.start("127.0.0.3")
    settings = make_settings(
        tmp_path, db_url, smtp_hostname="gw.test", relay=f"127.0.0.2:{farm.port}", relay_tls="none"
    )
    services = Services.open(settings)
    try:
        plain = await make_tenant(services, "Plain", ("plain.example",))
        m365 = await make_tenant(
            services, "Contoso", ("contoso.example",), relay=f"127.0.0.3:{farm.port}"
        )
        await queue(services, ["a@x.example"], tenant_id=plain.id, subject="plain")
        await queue(services, ["b@x.example"], tenant_id=m365.id, subject="m365")
        await queue(services, ["c@x.example"], tenant_id=m365.id, subject="m365 again")
        await deliver(services)
        assert [m.rcpt_tos for m in global_sink.messages] == [["a@x.example"]]
        assert sorted(m.rcpt_tos[0] for m in own_sink.messages) == ["b@x.example", "c@x.example"]
        async with services.db.session() as s:
            tenant = await s.get(Tenant, m365.id)
            assert tenant is not None and tenant.relay.endswith(str(farm.port))
        assert {st for st, _ in (await states(services)).values()} == {"sent"}
    finally:
        await services.close()


async def test_per_tenant_relay_down_defers_only_that_tenant(
    tmp_path: Path, db_url: str, farm: MxFarm
) -> None:
    global_sink = await farm.start("127.0.0.2")
    settings = make_settings(
        tmp_path, db_url, smtp_hostname="gw.test", relay=f"127.0.0.2:{farm.port}", relay_tls="none"
    )
    services = Services.open(settings)
    try:
        plain = await make_tenant(services, "Plain", ("plain.example",))
        m365 = await make_tenant(
            services, "Contoso", ("contoso.example",), relay=f"127.0.0.9:{farm.port}"
        )
        ok = await queue(services, ["a@x.example"], tenant_id=plain.id)
        down = await queue(services, ["b@x.example"], tenant_id=m365.id)
        await deliver(services)
        assert len(global_sink.messages) == 1
        assert (await states(services, ok))["a@x.example"][0] == "sent"
        assert (await states(services, down))["b@x.example"][0] == "deferred"
    finally:
        await services.close()


async def test_client_certificate_shown_to_the_next_hop(
    tmp_path: Path, db_url: str, farm: MxFarm
) -> None:
    """relay_tls_client_cert: what a Microsoft 365 inbound connector can recognise us by."""
    _ca, cert, key = write_pki(tmp_path / "server", ["relay.test"])
    client_ca, client_cert, client_key = write_pki(tmp_path / "client", ["relay.msp.example"])
    tls = server_tls(cert, key)
    tls.verify_mode = ssl.CERT_OPTIONAL
    tls.load_verify_locations(cafile=client_ca)
    peers: list[Any] = []

    class PeerSink(MxSink):
        async def handle_DATA(self, server, session, envelope):  # noqa: ANN001
            peers.append(session.ssl.get("peercert") if session.ssl else None)
            return await super().handle_DATA(server, session, envelope)

    sink = PeerSink()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: AioSMTP(sink, hostname="relay.test", tls_context=tls, require_starttls=True),
        "127.0.0.1",
        0,
    )
    port = server.sockets[0].getsockname()[1]
    settings = make_settings(
        tmp_path,
        db_url,
        smtp_hostname="gw.test",
        relay=f"127.0.0.1:{port}",
        relay_tls="opportunistic",
        relay_tls_client_cert=client_cert,
        relay_tls_client_key=client_key,
    )
    services = Services.open(settings)
    try:
        await queue(services, ["a@x.example"])
        await deliver(services)
        assert len(sink.messages) == 1 and sink.tls == [True]
        subject = dict(x[0] for x in peers[0]["subject"])
        assert subject["commonName"] == "relay.msp.example"
    finally:
        await services.close()
        server.close()
        await server.wait_closed()


async def test_failed_opportunistic_starttls_retries_in_clear(
    tmp_path: Path, db_url: str, fake_dns: FakeDns, farm: MxFarm
) -> None:
    """A TLS handshake that fails (here: the MX offers no cipher that fits its own EC
    key) is retried without TLS, as Postfix's "may" does, instead of waiting forever."""
    _ca, cert, key = write_pki(tmp_path / "pki", ["mx1.partner.example"])
    picky = server_tls(cert, key)
    picky.maximum_version = ssl.TLSVersion.TLSv1_2
    picky.set_ciphers("AES256-SHA256")  # RSA key exchange only: no shared cipher
    sink = await farm.start("127.0.0.2", picky)
    fake_dns.add("partner.example", "MX", "10 mx1.partner.example.")
    fake_dns.add("mx1.partner.example", "A", "127.0.0.2")
    services = Services.open(mx_settings(tmp_path, db_url, fake_dns, farm.port))
    try:
        item = await queue(services, ["bob@partner.example"])
        await deliver(services)
        assert sink.tls == [False] and len(sink.messages) == 1
        assert (await states(services, item))["bob@partner.example"][0] == "sent"
    finally:
        await services.close()


def test_next_hop_settings_are_validated(tmp_path: Path, db_url: str) -> None:
    s = make_settings(tmp_path, db_url, mx_port="2525", dns_resolver="127.0.0.1:5353")
    assert (s.mx_port, s.dns_resolver, s.relay_tls_client_cert) == (2525, "127.0.0.1:5353", "")
    for key, bad in (("mx_port", "0"), ("mx_port", "70000"), ("dns_resolver", "nope")):
        with pytest.raises(ConfigError, match=key):
            make_settings(tmp_path, db_url, **{key: bad})
    assert parse_relay("MX") == "mx"
    assert parse_relay("[2001:db8::1]:25") == "[2001:db8::1]:25"
    for bad in ("outlook.com", "a b:25", "host:x", ""):
        with pytest.raises(ValueError):
            parse_relay(bad)


async def test_connector_mail_goes_back_to_the_tenants_own_endpoint(
    gateway, gw_services: Services, sink: Sink, tenant, farm: MxFarm
) -> None:  # noqa: ANN001
    """Microsoft 365 shape: a connector (token header + allowed network) sends through the
    gateway, and the mail leaves for that tenant's own next hop, stamped, token removed;
    another tenant's mail still takes the global relay."""
    own = await farm.start("127.0.0.2")
    contoso = await make_tenant(
        gw_services,
        "Contoso",
        ("contoso.example",),
        networks=(("127.0.0.0/8", False),),
        relay=f"127.0.0.2:{farm.port}",
    )
    m365 = make_message(
        sender="adele@contoso.example",
        extra=f"X-Sealmail-Tenant-Token: {contoso.token}\r\n",
        message_id="<m365@contoso.example>",
    )
    await asend(gateway, m365, "adele@contoso.example", ["bob@partner.example"])
    await asend(
        gateway,
        make_message(),
        "alice@acme.example",
        ["carol@partner.example"],
        login=(tenant.username, tenant.password),
    )
    for _ in range(3):
        await run_once(gw_services)
        if own.messages and sink.messages:
            break
    assert [m.rcpt_tos for m in own.messages] == [["bob@partner.example"]]
    assert [m.rcpt_tos for m in sink.messages] == [["carol@partner.example"]]
    content = own.messages[0].content
    assert b"X-Sealmail-Processed: " + contoso.id.encode() in content
    assert b"X-Sealmail-Tenant-Token" not in content
