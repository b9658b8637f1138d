"""PGP/MIME and S/MIME copies of a large message, written from the stream (issue 15, flat
memory): decrypted by the real ``gpg`` and ``openssl`` they give the same entity as the
whole-message path's copies, part by part; the CMS structure written by hand is read by
openssl at every padding length; nothing is left on disk."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from archive import index
from core.mime_stream import scan
from core.models import Tenant
from core.services import Services
from gateway.headers import strip_fields
from gateway.pipeline.crypto import pgp, smime
from gateway.pipeline.crypto.large import LargeSource
from gateway.pipeline.original import LargeOriginal
from tests.gateway.pipeline.crypto.messages import leaves, parse, sample_message
from tests.gateway.pipeline.crypto.test_pgp import _decrypt
from tests.gateway.pipeline.crypto.test_pgp import _tenant as pgp_tenant
from tests.gateway.pipeline.crypto.test_smime import _openssl_decrypt
from tests.gateway.pipeline.crypto.test_smime import _tenant as smime_tenant
from tests.helpers import keygen
from tests.helpers.keygen import Certs, PgpKeys

pgp_keys = keygen.pgp_keys  # session fixtures
certs = keygen.certs


def _chunked(raw: bytes, size: int) -> Iterator[bytes]:
    return (raw[i : i + size] for i in range(0, len(raw), size))


def _source(raw: bytes, size: int = 1000) -> LargeSource:
    skeleton = scan(_chunked(raw, size))
    head = raw[: skeleton.root.body_start]
    original = LargeOriginal(lambda: _chunked(raw, size), skeleton, head, index.StreamSummary())
    return LargeSource(original, strip_fields(head))


def _big_message() -> bytes:
    raw = sample_message()
    blob = os.urandom(300_000)
    import base64

    att = base64.encodebytes(blob).replace(b"\n", b"\r\n")
    closing = raw.rindex(b"--")  # append one more part before the closing boundary
    boundary = raw[raw.rindex(b"\n--", 0, closing) + 1 : closing].split(b"\r\n")[0]
    extra = (
        b"\r\n" + boundary + b"\r\nContent-Type: application/octet-stream\r\n"
        b'Content-Disposition: attachment; filename="big.bin"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + att
    )
    end = raw.rindex(b"\r\n" + boundary + b"--")
    return raw[:end] + extra.rstrip(b"\r\n") + raw[end:]


async def test_pgp_copy_from_the_stream_decrypts_as_the_whole_copy(
    services: Services, pgp_keys: PgpKeys
) -> None:
    tenant: Tenant = await pgp_tenant(services, pgp_keys, "bob")
    raw = _big_message()
    whole = await pgp.encrypt_pgp_mime(services, tenant, strip_fields(raw), "bob@recipient.test")
    spooled = await pgp.encrypt_pgp_mime_large(services, tenant, _source(raw), "bob@recipient.test")
    spool = spooled.path
    assert spool is not None and spool.exists()
    out = b"".join(spooled.chunks())
    spooled.close()
    assert not spool.exists()  # the spooled ciphertext is removed
    assert b"big.bin" not in out and b"figures are attached" not in out
    for name in ("From", "To", "Subject", "Message-ID", "Content-Type"):
        assert str(parse(out)[name]).split(";")[0] == str(parse(whole)[name]).split(";")[0]
    inner, expected = parse(_decrypt(pgp_keys, out)), parse(_decrypt(pgp_keys, whole))
    assert inner["Subject"] == expected["Subject"] == "Quarterly figures, confidential"
    assert leaves(inner) == leaves(expected)
    assert len(leaves(inner)) == 5


async def test_smime_copy_from_the_stream_decrypts_as_the_whole_copy(
    services: Services, certs: Certs, tmp_path: Path
) -> None:
    tenant = await smime_tenant(services, certs, "carol")
    raw = _big_message()
    whole = await smime.encrypt_smime(services, tenant, strip_fields(raw), "carol@recipient.test")
    spooled = await smime.encrypt_smime_large(
        services, tenant, _source(raw, 777), "carol@recipient.test"
    )
    out = b"".join(spooled.chunks())
    assert b"figures are attached" not in out
    outer = parse(out)
    assert outer.get_content_type() == "application/pkcs7-mime"
    assert outer.get_param("smime-type") == "enveloped-data"
    assert outer["Content-Transfer-Encoding"] == "base64" and outer["Subject"]
    assert max(map(len, out.split(b"\r\n"))) <= 998
    inner = parse(_openssl_decrypt(certs, "carol", out, tmp_path))
    expected = parse(_openssl_decrypt(certs, "carol", whole, tmp_path))
    assert leaves(inner) == leaves(expected)
    assert len(leaves(inner)) == 5


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 70_000])
def test_hand_written_cms_is_read_by_openssl(certs: Certs, tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    der = b"".join(smime.envelope_stream(certs.pem["carol"], size, _chunked(data, 4096)))
    (tmp_path / "m.der").write_bytes(der)
    (tmp_path / "key.pem").write_bytes(certs.key_pem["carol"])
    proc = subprocess.run(
        ["openssl", "cms", "-decrypt", "-inform", "DER", "-in", str(tmp_path / "m.der")]
        + ["-inkey", str(tmp_path / "key.pem"), "-binary"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == data
    printed = subprocess.run(
        ["openssl", "cms", "-cmsout", "-print", "-inform", "DER", "-in", str(tmp_path / "m.der")],
        capture_output=True,
        check=True,
    ).stdout
    assert b"aes-256-cbc" in printed


def test_a_stream_of_another_size_is_refused(certs: Certs) -> None:
    with pytest.raises(ValueError, match="longer"):
        b"".join(smime.envelope_stream(certs.pem["carol"], 10, [b"x" * 11]))
    with pytest.raises(ValueError, match="shorter"):
        b"".join(smime.envelope_stream(certs.pem["carol"], 10, [b"x" * 9]))


ENCRYPT_FOR_BOB = """
rules:
  - name: bob
    when: {recipient: bob@*}
    action: encrypt
    method: pgp
"""


async def test_large_message_encrypted_by_the_pipeline_without_reading_it_whole(
    gateway, tenant, gw_services, sink, pgp_keys: PgpKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import select

    from core import recipient_keys
    from core.models import Message
    from core.policy import parse_policy
    from core.policy.store import set_policy
    from gateway.pipeline import runner
    from gateway.worker import run_once
    from tests.gateway.conftest import asend, whole_reads

    async with gw_services.db.session() as s:
        await set_policy(s, tenant.id, parse_policy(ENCRYPT_FOR_BOB), "test")
        await recipient_keys.import_keys(s, tenant.id, pgp_keys.public["bob"])
        await s.commit()
    monkeypatch.setattr(runner, "LARGE", 1000)
    read_whole = whole_reads(gw_services, monkeypatch)
    raw = _big_message()
    result = await asend(
        gateway, raw, "alice@acme.example", ["bob@recipient.test"],
        login=(tenant.username, tenant.password),
    )  # fmt: skip
    assert result == {}
    assert await run_once(gw_services) >= 1
    async with gw_services.db.session() as s:
        m = (await s.execute(select(Message))).scalar_one()
    assert m.state == "processed" and m.disposition == "pgp"
    assert m.raw_object_id not in read_whole
    (got,) = await sink.wait_for(1)
    inner = parse(_decrypt(pgp_keys, got.content))
    assert [name for _t, name, _d in leaves(inner)][-1] == "big.bin"
    assert leaves(inner) == leaves(parse(raw))
