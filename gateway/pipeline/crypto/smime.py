"""S/MIME encryption to a recipient's certificate from the tenant's directory (RFC 8551).

The body entity (the original body with its ``Content-*`` headers) is enveloped with
``cryptography``'s PKCS#7 envelope builder — AES-256-CBC content encryption, the content
key wrapped with the recipient's RSA key (PKCS#1 v1.5, what the builder does and what
every client, openssl included, reads) — and sent as ``application/pkcs7-mime;
smime-type=enveloped-data``. The outer headers are kept (internal ``X-Sealmail-*`` ones
dropped). The certificate's validity is checked again at send time: an expired certificate
is a TransientError, so the message waits (an admin can import a new one) and bounces at
``queue_lifetime``. Nothing here ever returns clear text.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable, Iterator

from cryptography import x509
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from sqlalchemy.exc import SQLAlchemyError

from core.errors import TransientError
from core.mime_stream import base64_lines
from core.models import Tenant
from core.recipient_keys import usable_keys
from core.services import Services
from gateway.pipeline.crypto import mime
from gateway.pipeline.crypto.large import PLACEHOLDER, LargeSource, Spooled, around_placeholder

SMIME_TYPE = "enveloped-data"


def check_validity(cert_pem: bytes, at: float | None = None) -> x509.Certificate:
    """The certificate, or TransientError when it has expired or is not yet valid."""
    at = time.time() if at is None else at
    cert = x509.load_pem_x509_certificate(cert_pem)
    if cert.not_valid_after_utc.timestamp() <= at:
        raise TransientError(f"S/MIME certificate {cert.subject.rfc4514_string()} has expired")
    if cert.not_valid_before_utc.timestamp() > at:
        raise TransientError(f"S/MIME certificate {cert.subject.rfc4514_string()} is not yet valid")
    return cert


def envelope_der(cert_pem: bytes, data: bytes, at: float | None = None) -> bytes:
    """DER CMS EnvelopedData of ``data`` for ``cert_pem`` (blocking: run in a thread)."""
    cert = check_validity(cert_pem, at)
    return (
        pkcs7.PKCS7EnvelopeBuilder()
        .set_data(data)
        .add_recipient(cert)
        .set_content_encryption_algorithm(algorithms.AES256)
        .encrypt(Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )


async def _certificate(services: Services, tenant: Tenant, rcpt: str) -> bytes:
    """The recipient's certificate from the tenant's directory (PEM), or TransientError."""
    try:
        async with services.db.session() as s:
            certs = await usable_keys(s, tenant.id, rcpt, "smime")
    except SQLAlchemyError as exc:
        raise TransientError("key directory unavailable") from exc
    if not certs:
        raise TransientError(f"no usable S/MIME certificate for {rcpt} in the tenant's directory")
    return bytes(certs[0].material)


async def encrypt_smime(services: Services, tenant: Tenant, raw: bytes, rcpt: str) -> bytes:
    """``raw`` as an S/MIME enveloped message to ``rcpt``'s certificate; TransientError
    when there is none usable or encryption fails."""
    material = await _certificate(services, tenant, rcpt)
    outer, inner = mime.split(raw, protect=False)
    try:
        der = await asyncio.to_thread(envelope_der, material, mime.to_bytes(inner))
    except TransientError:
        raise
    except Exception as exc:  # noqa: BLE001 - cryptography, bad stored certificate
        raise TransientError(f"S/MIME encryption failed: {type(exc).__name__}") from exc
    msg = mime.start(outer)
    msg.set_content(
        der,
        maintype="application",
        subtype="pkcs7-mime",
        params={"smime-type": SMIME_TYPE, "name": "smime.p7m"},
        disposition="attachment",
        filename="smime.p7m",
    )
    return mime.to_bytes(msg)


# --- a large message: CMS EnvelopedData written as a stream (DER, definite lengths) ------

_OID_ENVELOPED = bytes.fromhex("06092a864886f70d010703")  # 1.2.840.113549.1.7.3
_OID_DATA = bytes.fromhex("06092a864886f70d010701")  # 1.2.840.113549.1.7.1
_OID_RSA = bytes.fromhex("06092a864886f70d010101")  # rsaEncryption
_OID_AES256_CBC = bytes.fromhex("060960864801650304012a")  # 2.16.840.1.101.3.4.1.42


def _head(tag: int, length: int) -> bytes:
    if length < 0x80:
        return bytes([tag, length])
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(octets)]) + octets


def _tlv(tag: int, body: bytes) -> bytes:
    return _head(tag, len(body)) + body


def _integer(value: int) -> bytes:
    return _tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


def envelope_stream(cert_pem: bytes, size: int, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """:func:`envelope_der` of ``size`` bytes read from ``chunks``, chunk by chunk: the
    same structure cryptography's builder writes (EnvelopedData version 0, one
    KeyTransRecipientInfo by issuer and serial number, RSA PKCS#1 v1.5 key transport,
    AES-256-CBC with PKCS#7 padding), with definite lengths, which ``size`` makes known
    before the first byte (blocking; ValueError when ``chunks`` hold another size)."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    public = cert.public_key()
    if not isinstance(public, rsa.RSAPublicKey):
        raise TransientError("S/MIME of a large message needs an RSA certificate")
    key, iv = os.urandom(32), os.urandom(16)
    sid = _tlv(0x30, cert.issuer.public_bytes() + _integer(cert.serial_number))
    recipient = _tlv(
        0x30,
        _integer(0) + sid + _tlv(0x30, _OID_RSA + b"\x05\x00")
        + _tlv(0x04, public.encrypt(key, padding.PKCS1v15())),
    )  # fmt: skip
    recipients = _tlv(0x31, recipient)
    algorithm = _tlv(0x30, _OID_AES256_CBC + _tlv(0x04, iv))
    sealed = (size // 16 + 1) * 16  # PKCS#7 padding adds 1 to 16 octets
    content = _OID_DATA + algorithm + _head(0x80, sealed)  # [0] IMPLICIT OCTET STRING
    info_len = len(content) + sealed
    enveloped_len = len(_integer(0)) + len(recipients) + len(_head(0x30, info_len)) + info_len
    explicit_len = len(_head(0x30, enveloped_len)) + enveloped_len
    outer_len = len(_OID_ENVELOPED) + len(_head(0xA0, explicit_len)) + explicit_len
    yield (
        _head(0x30, outer_len) + _OID_ENVELOPED + _head(0xA0, explicit_len)
        + _head(0x30, enveloped_len) + _integer(0) + recipients
        + _head(0x30, info_len) + content
    )  # fmt: skip
    encryptor = Cipher(algorithms.AES256(key), modes.CBC(iv)).encryptor()
    padder = sym_padding.PKCS7(128).padder()
    seen = 0
    for chunk in chunks:
        seen += len(chunk)
        if seen > size:
            raise ValueError("the entity is longer than announced")
        yield encryptor.update(padder.update(chunk))
    if seen != size:
        raise ValueError("the entity is shorter than announced")
    yield encryptor.update(padder.finalize()) + encryptor.finalize()


async def encrypt_smime_large(
    services: Services, tenant: Tenant, source: LargeSource, rcpt: str
) -> Spooled:
    """:func:`encrypt_smime` of a large message: the certificate chosen and checked now,
    the enveloped message written as a stream when the outbox seals it (base64 lines)."""
    material = await _certificate(services, tenant, rcpt)
    check_validity(material)
    entity = source.entity(protect=False)
    msg = mime.start(entity.outer)
    msg.set_content(
        b"",
        maintype="application",
        subtype="pkcs7-mime",
        params={"smime-type": SMIME_TYPE, "name": "smime.p7m"},
        disposition="attachment",
        filename="smime.p7m",
    )
    msg.set_payload(PLACEHOLDER + "\n")
    before, after = around_placeholder(mime.to_bytes(msg))

    def chunks() -> Iterator[bytes]:
        yield before
        der = envelope_stream(material, entity.size, entity.chunks())
        yield from base64_lines(der)
        yield after

    return Spooled(chunks)
