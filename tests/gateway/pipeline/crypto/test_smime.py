"""S/MIME output is decrypted by ``openssl cms -decrypt`` with the recipient's key and equals
the original entity, part by part; an expired certificate makes the message wait."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import update

from core import recipient_keys
from core.accounts.tenants import get_tenant
from core.errors import TransientError
from core.models import RecipientKey, Tenant
from core.services import Services
from gateway.pipeline.crypto import smime
from tests.gateway.pipeline.crypto.messages import ATTACHMENT, leaves, parse, sample_message
from tests.helpers import keygen
from tests.helpers.keygen import Certs
from tests.portal.conftest import make_tenant

certs = keygen.certs  # session fixture


async def _tenant(services: Services, c: Certs, *names: str) -> Tenant:
    tid = await make_tenant(services, "Acme", "acme.example")
    async with services.db.session() as s:
        for name in names:
            await recipient_keys.import_keys(s, tid, c.pem[name])
        await s.commit()
        tenant = await get_tenant(s, tid)
    assert tenant is not None
    return tenant


def _openssl_decrypt(c: Certs, name: str, message: bytes, tmp: Path) -> bytes:
    (tmp / "msg.eml").write_bytes(message)
    (tmp / "cert.pem").write_bytes(c.pem[name])
    (tmp / "key.pem").write_bytes(c.key_pem[name])
    proc = subprocess.run(
        ["openssl", "cms", "-decrypt", "-in", str(tmp / "msg.eml")]
        + ["-recip", str(tmp / "cert.pem"), "-inkey", str(tmp / "key.pem"), "-binary"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


async def test_smime_decrypts_with_openssl_to_the_original(
    services: Services, certs: Certs, tmp_path: Path
) -> None:
    tenant = await _tenant(services, certs, "carol")
    raw = sample_message()
    out = await smime.encrypt_smime(services, tenant, raw, "Carol@recipient.test")

    for secret in (b"figures are attached", ATTACHMENT[:32], b"connector-token"):
        assert secret not in out
    outer, original = parse(out), parse(raw)
    assert outer.get_content_type() == "application/pkcs7-mime"
    assert outer.get_param("smime-type") == "enveloped-data"
    assert outer.get_param("name") == "smime.p7m"
    assert outer["Content-Transfer-Encoding"] == "base64"
    for name in ("From", "To", "Cc", "Subject", "Date", "Message-ID"):
        assert outer[name] == original[name]
    assert outer["X-Sealmail-Tenant-Token"] is None

    asn1 = subprocess.run(
        ["openssl", "cms", "-cmsout", "-print", "-inform", "DER"],
        input=outer.get_payload(decode=True),
        capture_output=True,
        check=True,
    ).stdout
    assert b"aes-256-cbc" in asn1

    inner = parse(_openssl_decrypt(certs, "carol", out, tmp_path))
    assert inner.get_content_type() == "multipart/mixed"
    assert leaves(inner) == leaves(original)


async def test_no_certificate_and_expired_at_send_time_are_transient(
    services: Services, certs: Certs
) -> None:
    tenant = await _tenant(services, certs, "carol")
    with pytest.raises(TransientError, match="no usable S/MIME certificate"):
        await smime.encrypt_smime(services, tenant, sample_message(), "nobody@recipient.test")
    # the directory still lists it as valid, but the certificate itself has run out
    with pytest.raises(TransientError, match="has expired"):
        smime.envelope_der(certs.pem["carol"], b"x", at=time.time() + 365 * 86400)
    async with services.db.session() as s:
        await s.execute(update(RecipientKey).values(material=b"garbage"))
        await s.commit()
    with pytest.raises(TransientError, match="S/MIME encryption failed"):
        await smime.encrypt_smime(services, tenant, sample_message(), "carol@recipient.test")
