"""docs/FORMAT.md, followed by hand: only AES-GCM and the byte layout the page describes.

If the code and the page disagree, these tests fail.
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select

from core import sealed
from core.accounts.tenants import create_tenant
from core.aead import new_key
from core.models import SealedObject, TenantKey
from core.services import Services

DOC = Path(__file__).resolve().parents[2] / "docs" / "FORMAT.md"


def parse_by_the_doc(blob: bytes, dek: bytes, tenant_id: str, object_id: str) -> bytes:
    header = blob[:16]
    assert header[0:3] == b"SMO" and header[3] == 0x01
    (chunk_size,) = struct.unpack(">I", header[4:8])
    prefix = header[8:16]
    aad = header + b"sealmail/v1\x00" + tenant_id.encode() + b"\x00" + object_id.encode()
    body = blob[16:]
    step = chunk_size + 16
    n_chunks = len(body) // step + 1  # every chunk but the last is C + 16 bytes
    assert len(body) % step >= 16, "the last chunk is shorter than C + 16 and holds a tag"
    out = []
    for i in range(n_chunks):
        piece = body[i * step : (i + 1) * step]
        last = i == n_chunks - 1
        nonce = prefix + struct.pack(">I", i | (0x80000000 if last else 0))
        out.append(AESGCM(dek).decrypt(nonce, piece, aad))
    assert all(len(p) == chunk_size for p in out[:-1]) and len(out[-1]) < chunk_size
    return b"".join(out)


def unwrap_by_the_doc(kek: bytes, blob: bytes, aad: bytes) -> bytes:
    assert len(blob) == 61 and blob[0] == 0x01
    return AESGCM(kek).decrypt(blob[1:13], blob[13:], aad)


@pytest.mark.parametrize(("size", "chunk"), [(0, 16), (20, 16), (32, 16), (100_000, 65536)])
def test_sealed_bytes_parse_by_hand(size: int, chunk: int) -> None:
    dek = new_key()
    data = hashlib.sha256(b"seed").digest() * (size // 32 + 1)
    data = data[:size]
    blob = b"".join(sealed.seal_stream(dek, "t_a", "o_1", [data], chunk_size=chunk))
    assert len(blob) == 16 + size + 16 * (size // chunk + 1)  # the size formula
    assert parse_by_the_doc(blob, dek, "t_a", "o_1") == data


def test_worked_example(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sealed.os, "urandom", lambda n: bytes(range(1, n + 1)))
    dek = new_key()
    blob = b"".join(sealed.seal_stream(dek, "t_a", "o_1", [b"Hello, sealed world!"], 16))
    monkeypatch.undo()
    assert blob[:16] == bytes.fromhex("534D4F01 00000010 0102030405060708".replace(" ", ""))
    assert len(blob) == 68
    aad = blob[:16] + b"sealmail/v1\x00t_a\x00o_1"
    p = bytes(range(1, 9))
    assert AESGCM(dek).decrypt(p + bytes.fromhex("00000000"), blob[16:48], aad) == (
        b"Hello, sealed wo"
    )
    assert AESGCM(dek).decrypt(p + bytes.fromhex("80000001"), blob[48:68], aad) == b"rld!"
    text = DOC.read_text()
    for line in ("53 4D 4F", "00 00 00 10", "P ‖ 80 00 00 01", "16 + 20 + 2 × 16 = 68"):
        assert line in text


async def test_whole_hierarchy_by_hand(services: Services) -> None:
    """Root key file → tenant_keys row → sealed_objects row → stored bytes → plaintext."""
    async with services.db.session() as s:
        creds = await create_tenant(s, services.keyring, "Acme", ["acme.example"])
        await s.commit()
    tid = creds.tenant_id
    data = b"the message\r\n" * 20_000
    async with services.db.session() as s:
        obj = await services.vault.seal(s, tid, data, "raw")
        await s.commit()
    async with services.db.session() as s:
        krow = (await s.execute(select(TenantKey).where(TenantKey.tenant_id == tid))).scalar_one()
        orow = (await s.execute(select(SealedObject))).scalar_one()
    root_path = services.settings.root_key_path
    assert root_path is not None
    root = Path(root_path).read_bytes()
    assert krow.root_key_id == "file:" + hashlib.sha256(b"sealmail-root-id" + root).hexdigest()[:16]
    kek = unwrap_by_the_doc(
        root, krow.wrapped_key, f"sealmail/kek/v1\x00{tid}\x00{krow.version}".encode()
    )
    assert orow.wrapped_key is not None and orow.kek_version == krow.version
    dek = unwrap_by_the_doc(kek, orow.wrapped_key, f"sealmail/dek/v1\x00{tid}\x00{obj.id}".encode())
    with services.store.open(orow.storage_name) as fh:
        blob = fh.read()
    assert orow.sha256 == hashlib.sha256(blob).hexdigest()
    assert struct.unpack(">I", blob[4:8])[0] == 65536  # the default chunk size
    assert parse_by_the_doc(blob, dek, tid, obj.id) == data
