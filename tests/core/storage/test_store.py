"""The object stores: LocalStore specifics (atomic durable writes, private permissions),
then the behaviour both stores share (parametrized ``store``: local disk and S3 on moto).
S3 specifics (Object Lock, errors, start-up checks, memory) are in test_s3local.py."""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from core.accounts.tenants import create_tenant
from core.errors import ConfigError, NotFound, TransientError
from core.services import Services
from core.storage.factory import open_store
from core.storage.interface import ObjectStore
from core.storage.local import LocalStore
from core.storage.s3 import S3Store
from tests.helpers.stores import listing, s3_client


@pytest.fixture
def local(tmp_path: Path) -> LocalStore:
    s = LocalStore(tmp_path / "archive")
    s.create()
    return s


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_put_open_exists_delete(local: LocalStore) -> None:
    assert local.put("o_abc123", [b"hello ", b"", b"world"]) == 11
    assert local.exists("o_abc123")
    with local.open("o_abc123") as fh:
        assert fh.read() == b"hello world"
    assert b"".join(local.iter_bytes("o_abc123", size=3)) == b"hello world"
    assert local.put("o_abc123", [b"replaced"]) == 8
    with local.open("o_abc123") as fh:
        assert fh.read() == b"replaced"
    local.delete("o_abc123")
    assert not local.exists("o_abc123")
    local.delete("o_abc123")  # deleting twice is fine
    with pytest.raises(NotFound):
        local.open("o_abc123")
    assert files_under(local.root) == []


def test_objects_fan_out_by_name(local: LocalStore) -> None:
    local.put("o_aaXy", [b"1"])
    local.put("o_bbXy", [b"2"])
    local.put("o_ccZZ", [b"3"])
    assert [p.relative_to(local.root).as_posix() for p in files_under(local.root)] == [
        "xy/o_aaXy",
        "xy/o_bbXy",
        "zz/o_ccZZ",
    ]


def test_permissions_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        s = LocalStore(tmp_path / "a" / "archive")
        s.create()
        s.put("o_perm01", [b"secret-ish"])
    finally:
        os.umask(old)
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(s.root) == 0o700
    [obj] = files_under(s.root)
    assert mode(obj) == 0o600
    assert mode(obj.parent) == 0o700


def test_crash_mid_write_leaves_nothing(local: LocalStore) -> None:
    def dying() -> Iterator[bytes]:
        yield b"x" * 100_000
        yield b"y" * 100_000
        raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        local.put("o_crash1", dying())
    assert not local.exists("o_crash1")
    assert files_under(local.root) == []  # no object, no temp file


def test_crash_while_replacing_keeps_the_old_object(local: LocalStore) -> None:
    local.put("o_keep01", [b"old version"])

    def dying() -> Iterator[bytes]:
        yield b"new"
        raise OSError(5, "I/O error")

    with pytest.raises(TransientError):
        local.put("o_keep01", dying())
    with local.open("o_keep01") as fh:
        assert fh.read() == b"old version"
    assert len(files_under(local.root)) == 1


@pytest.mark.parametrize(
    "name",
    ["", "../escape", "a/b", "/abs", ".hidden", "a..b", "x" * 201, "name with space", "é", "a\x00"],
)
def test_names_are_validated(store: ObjectStore, name: str) -> None:
    with pytest.raises(ValueError):
        store.put(name, [b"x"])
    with pytest.raises(ValueError):
        store.open(name)
    with pytest.raises(ValueError):
        store.delete(name)
    with pytest.raises(ValueError):
        store.exists(name)
    assert listing(store) == []


def test_storage_failures_are_transient(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    s = LocalStore(blocker / "archive")
    with pytest.raises(TransientError):
        s.put("o_abc", [b"x"])
    with pytest.raises(TransientError):
        s.check()
    ok = LocalStore(tmp_path / "fine")
    ok.create()
    ok.check()


def test_open_store_by_url(tmp_path: Path) -> None:
    s = open_store(f"file://{tmp_path}/arch")
    assert isinstance(s, LocalStore) and s.root == tmp_path / "arch"
    s3 = open_store("s3://my-bucket/some/prefix/", endpoint_url="http://127.0.0.1:9")
    assert isinstance(s3, S3Store)
    assert (s3.bucket, s3.prefix, s3.endpoint_url) == (
        "my-bucket",
        "some/prefix",
        "http://127.0.0.1:9",
    )
    assert s3.key("o_abc") == "some/prefix/o_abc"
    for bad in (
        "s3://",
        "s3://x/p",
        "s3://Bad_Bucket/p",
        "s3://UpperCase/p",
        "s3://a..b/p",
        "ftp://x",
    ):
        with pytest.raises(ConfigError):
            open_store(bad)
    with pytest.raises(ConfigError):
        open_store("s3://my-bucket/p", object_lock="forever")
    with pytest.raises(ConfigError, match="s3_endpoint_url 'localhost:9000'"):
        open_store("s3://my-bucket/p", endpoint_url="localhost:9000")


# --- both stores ------------------------------------------------------------------------


def pending_uploads(store: ObjectStore) -> list[str]:
    if not isinstance(store, S3Store):
        return []
    r = s3_client(store.endpoint_url).list_multipart_uploads(Bucket=store.bucket)
    return [u["Key"] for u in r.get("Uploads", ())]


def pieces(total: int, seed: int = 1, size: int = 65_537) -> Iterator[bytes]:
    """``total`` bytes of a reproducible pattern in odd-sized pieces (no whole copy)."""
    block = hashlib.sha256(str(seed).encode()).digest() * 4096  # 128 KiB
    sent = 0
    while sent < total:
        n = min(size, total - sent)
        off = sent % len(block)
        piece = (block[off:] + block)[:n]
        sent += n
        yield piece


def digest_of(chunks: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for c in chunks:
        h.update(c)
    return h.hexdigest()


def test_round_trip_small(store: ObjectStore) -> None:
    assert store.put("o_small1", [b"hello ", b"", b"world"]) == 11
    assert store.exists("o_small1") and not store.exists("o_other1")
    with store.open("o_small1") as fh:
        assert fh.read(5) == b"hello"
        assert fh.read() == b" world"
        assert fh.read() == b""
    assert store.put("o_small1", [b"replaced"]) == 8
    with store.open("o_small1") as fh:
        assert fh.read() == b"replaced"
    assert store.put("o_empty1", []) == 0
    with store.open("o_empty1") as fh:
        assert fh.read() == b""
    store.delete("o_small1")
    store.delete("o_empty1")
    assert not store.exists("o_small1")
    store.delete("o_small1")  # deleting twice is fine
    with pytest.raises(NotFound, match="o_small1"):
        store.open("o_small1")
    assert listing(store) == []  # S3: no old version left behind either


def test_round_trip_multipart_byte_for_byte(store: ObjectStore) -> None:
    total = 20_000_000  # S3: four parts of 5 MiB (the last one shorter)
    assert store.put("o_big001", pieces(total)) == total
    with store.open("o_big001") as fh:
        got = digest_of(iter(lambda: fh.read(64 * 1024), b""))
    assert got == digest_of(pieces(total))
    if isinstance(store, S3Store):
        head = s3_client(store.endpoint_url).head_object(
            Bucket=store.bucket, Key="archive/o_big001"
        )
        assert head["ContentLength"] == total
        assert head["ETag"].strip('"').endswith("-4")  # a multipart object of 4 parts
    assert pending_uploads(store) == []
    # exactly one part's worth also round-trips (no empty trailing part)
    exact = 5 * 1024 * 1024
    assert store.put("o_exact01", pieces(exact, seed=2)) == exact
    with store.open("o_exact01") as fh:
        assert hashlib.sha256(fh.read()).hexdigest() == digest_of(pieces(exact, seed=2))


@pytest.mark.parametrize("fail_after", [100_000, 12 * 1024 * 1024])
def test_failing_stream_leaves_no_object_and_no_upload(store: ObjectStore, fail_after: int) -> None:
    store.put("o_keep01", [b"old version"])

    def dying() -> Iterator[bytes]:
        yield from pieces(fail_after)
        raise RuntimeError("client went away")

    with pytest.raises(RuntimeError, match="client went away"):
        store.put("o_dying1", dying())
    with pytest.raises(RuntimeError):
        store.put("o_keep01", dying())
    assert not store.exists("o_dying1")
    with store.open("o_keep01") as fh:
        assert fh.read() == b"old version"
    assert pending_uploads(store) == []
    assert listing(store) == ["o_keep01"] if isinstance(store, LocalStore) else ["archive/o_keep01"]


def test_retention_without_object_lock_is_recorded_nowhere(store: ObjectStore) -> None:
    """Object Lock off (the default): retain_until is accepted and nothing blocks delete."""
    store.put("o_ret001", [b"x" * 10], retain_until=time.time() + 3600)
    store.set_retention("o_ret001", time.time() + 7200)
    store.delete("o_ret001")
    assert not store.exists("o_ret001")
    assert listing(store) == []


async def test_abandoned_seal_writer_leaves_nothing(services: Services) -> None:
    """The SMTP path: a SealWriter fed 10 MiB (S3: past the first 8 MiB part, so a
    multipart upload is under way) then aborted leaves no object and no upload."""
    async with services.db.session() as s:
        creds = await create_tenant(s, services.keyring, "Acme", ["acme.example"])
        await s.commit()
    async with services.db.session() as s:
        writer = await services.vault.writer(s, creds.tenant_id, "raw")
        for piece in pieces(10 * 1024 * 1024, size=256 * 1024):
            await writer.write(piece)
        await writer.abort()
        kept = await services.vault.writer(s, creds.tenant_id, "raw")
        await kept.write(b"a message that arrived whole")
        row = await kept.close()
    assert listing(services.store) == [
        row.storage_name if isinstance(services.store, LocalStore) else f"archive/{row.id}"
    ]
    assert pending_uploads(services.store) == []
