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
import time

from cryptography import x509
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from sqlalchemy.exc import SQLAlchemyError

from core.errors import TransientError
from core.models import Tenant
from core.recipient_keys import usable_keys
from core.services import Services
from gateway.pipeline.crypto import mime

SMIME_TYPE = "enveloped-data"


def envelope_der(cert_pem: bytes, data: bytes, at: float | None = None) -> bytes:
    """DER CMS EnvelopedData of ``data`` for ``cert_pem`` (blocking: run in a thread)."""
    at = time.time() if at is None else at
    cert = x509.load_pem_x509_certificate(cert_pem)
    if cert.not_valid_after_utc.timestamp() <= at:
        raise TransientError(f"S/MIME certificate {cert.subject.rfc4514_string()} has expired")
    if cert.not_valid_before_utc.timestamp() > at:
        raise TransientError(f"S/MIME certificate {cert.subject.rfc4514_string()} is not yet valid")
    return (
        pkcs7.PKCS7EnvelopeBuilder()
        .set_data(data)
        .add_recipient(cert)
        .set_content_encryption_algorithm(algorithms.AES256)
        .encrypt(Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )


async def encrypt_smime(services: Services, tenant: Tenant, raw: bytes, rcpt: str) -> bytes:
    """``raw`` as an S/MIME enveloped message to ``rcpt``'s certificate; TransientError
    when there is none usable or encryption fails."""
    try:
        async with services.db.session() as s:
            certs = await usable_keys(s, tenant.id, rcpt, "smime")
    except SQLAlchemyError as exc:
        raise TransientError("key directory unavailable") from exc
    if not certs:
        raise TransientError(f"no usable S/MIME certificate for {rcpt} in the tenant's directory")
    outer, inner = mime.split(raw, protect=False)
    try:
        der = await asyncio.to_thread(envelope_der, certs[0].material, mime.to_bytes(inner))
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
