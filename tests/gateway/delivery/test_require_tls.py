"""require_tls: an outbox item sent only over STARTTLS with a certificate that verifies.

Real loopback sinks: one with STARTTLS and a certificate from a test CA (given as
``relay_tls_ca_file``), one without STARTTLS, one with a self-signed certificate the CA file
does not know. When verified TLS is not possible nothing reaches the sink: the recipient is
``rerouted`` and its message goes back to the pipeline for the portal.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP as AioSMTP
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from core import outbox
from core.ids import queue_id
from core.models import AuditEvent, Message, MessageRecipient, OutboxRecipient
from core.services import Services
from gateway.delivery.drain import deliver_due
from gateway.delivery.relay import RelayPool
from gateway.worker import worker_id
from tests.conftest import make_settings
from tests.gateway.conftest import Sink, make_message, make_tenant, write_self_signed

pytestmark = pytest.mark.timeout(60)

RCPT = "bob@partner.example"


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def write_ca_and_leaf(directory: Path) -> tuple[str, str, str]:
    """A test CA and a server certificate for 127.0.0.1 signed by it: (ca, cert, key)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sealmail test CA")])
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
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = directory / "ca.crt", directory / "relay.crt", directory / "k"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(_pem_key(key))
    return str(ca_path), str(cert_path), str(key_path)


class TlsSink(Sink):
    """The capturing sink, and whether each message came over TLS."""

    def __init__(self) -> None:
        super().__init__()
        self.tls: list[bool] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001
        self.tls.append(session.ssl is not None)
        return await super().handle_DATA(server, session, envelope)


async def _serve(cert_key: tuple[str, str] | None) -> tuple[TlsSink, asyncio.AbstractServer]:
    sink = TlsSink()
    tls = None
    if cert_key is not None:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(*cert_key)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: AioSMTP(sink, hostname="sink.test", tls_context=tls, require_starttls=False),
        "127.0.0.1",
        0,
    )
    sink.port = server.sockets[0].getsockname()[1]
    return sink, server


@pytest.fixture
def pki(tmp_path: Path) -> tuple[str, str, str]:
    return write_ca_and_leaf(tmp_path / "pki")


async def _open(
    tmp_path: Path, db_url: str, sink: TlsSink, ca: str, relay_tls: str = "none"
) -> Services:
    settings = make_settings(
        tmp_path,
        db_url,
        smtp_hostname="gw.test",
        relay=f"127.0.0.1:{sink.port}",
        relay_tls=relay_tls,
        relay_tls_ca_file=ca,
    )
    return Services.open(settings)


async def _queue_clear_copy(services: Services, require_tls: bool = True) -> tuple[str, str]:
    """A processed message with one recipient and its clear copy in the outbox."""
    tenant = await make_tenant(services)
    async with services.db.session() as s:
        raw = make_message(subject="Contract", body="the secret figures\r\n")
        obj = await services.vault.seal(s, tenant.id, raw, kind="raw")
        msg = Message(
            id=queue_id(),
            tenant_id=tenant.id,
            mail_from="alice@acme.example",
            state="processed",
            disposition="clear",
            raw_object_id=obj.id,
            next_attempt_at=12345.0,
        )
        s.add(msg)
        await s.flush()
        s.add(MessageRecipient(message_id=msg.id, rcpt=RCPT, disposition="clear", state="done"))
        out = await services.vault.seal(s, tenant.id, raw, kind="outbound")
        item = await outbox.enqueue(
            s,
            kind="clear",
            tenant_id=tenant.id,
            mail_from="alice@acme.example",
            recipients=[RCPT],
            object_id=out.id,
            lifetime=3600,
            message_id=msg.id,
        )
        item.require_tls = require_tls
        await s.commit()
        return msg.id, item.id


async def _deliver(services: Services) -> None:
    pool = RelayPool(services.settings)
    try:
        await deliver_due(services, pool, worker_id())
    finally:
        await pool.close()


async def _rows(services: Services, message_id: str):  # noqa: ANN202
    async with services.db.session() as s:
        msg = await s.get(Message, message_id)
        mr = (
            await s.execute(select(MessageRecipient).where(MessageRecipient.message_id == msg.id))
        ).scalar_one()
        orr = (await s.execute(select(OutboxRecipient))).scalar_one()
        audits = (
            (
                await s.execute(
                    select(AuditEvent).where(AuditEvent.action == "delivery.rerouted_to_portal")
                )
            )
            .scalars()
            .all()
        )
        return msg, mr, orr, audits


async def test_verified_tls_delivers(tmp_path: Path, db_url: str, pki) -> None:  # noqa: ANN001
    ca, cert, key = pki
    sink, server = await _serve((cert, key))
    services = await _open(tmp_path, db_url, sink, ca, relay_tls="none")
    try:
        message_id, _ = await _queue_clear_copy(services)
        await _deliver(services)
        assert len(sink.messages) == 1
        assert sink.tls == [True]  # over TLS although relay_tls = "none"
        msg, mr, orr, audits = await _rows(services, message_id)
        assert orr.state == "sent"
        assert (msg.state, mr.override, mr.state) == ("processed", "", "done")
        assert audits == []
    finally:
        await services.close()
        server.close()
        await server.wait_closed()


async def _assert_rerouted(services: Services, sink: TlsSink, message_id: str) -> None:
    assert sink.messages == []
    msg, mr, orr, audits = await _rows(services, message_id)
    assert orr.state == "rerouted"
    assert orr.last_reply.startswith("rerouted to portal")
    assert (mr.override, mr.state) == ("portal", "pending")
    assert (msg.state, msg.next_attempt_at) == ("received", 0.0)
    assert len(audits) == 1 and audits[0].subject_id == message_id
    async with services.db.session() as s:
        dsns = await outbox.list_pending(s)
    assert dsns == []  # no bounce, no DSN, nothing left to send


async def test_no_starttls_reroutes_to_portal(tmp_path: Path, db_url: str, pki) -> None:  # noqa: ANN001
    ca, _cert, _key = pki
    sink, server = await _serve(None)
    services = await _open(tmp_path, db_url, sink, ca, relay_tls="opportunistic")
    try:
        message_id, _ = await _queue_clear_copy(services)
        await _deliver(services)
        await _assert_rerouted(services, sink, message_id)
    finally:
        await services.close()
        server.close()
        await server.wait_closed()


async def test_untrusted_certificate_reroutes(tmp_path: Path, db_url: str, pki) -> None:  # noqa: ANN001
    ca, _cert, _key = pki
    self_signed = write_self_signed(tmp_path / "selfsigned")
    sink, server = await _serve(self_signed)
    services = await _open(tmp_path, db_url, sink, ca, relay_tls="opportunistic")
    try:
        message_id, _ = await _queue_clear_copy(services)
        await _deliver(services)
        await _assert_rerouted(services, sink, message_id)
    finally:
        await services.close()
        server.close()
        await server.wait_closed()


async def test_without_require_tls_nothing_changes(tmp_path: Path, db_url: str, pki) -> None:  # noqa: ANN001
    """The same sink without STARTTLS takes an ordinary item in clear, as before."""
    ca, _cert, _key = pki
    sink, server = await _serve(None)
    services = await _open(tmp_path, db_url, sink, ca)
    try:
        await _queue_clear_copy(services, require_tls=False)
        await _deliver(services)
        assert len(sink.messages) == 1 and sink.tls == [False]
    finally:
        await services.close()
        server.close()
        await server.wait_closed()
