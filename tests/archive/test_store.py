"""LocalStore: atomic durable writes, private permissions, validated names."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from archive.store import LocalStore, open_store
from core.errors import ConfigError, NotFound, TransientError


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    s = LocalStore(tmp_path / "archive")
    s.create()
    return s


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_put_open_exists_delete(store: LocalStore) -> None:
    assert store.put("o_abc123", [b"hello ", b"", b"world"]) == 11
    assert store.exists("o_abc123")
    with store.open("o_abc123") as fh:
        assert fh.read() == b"hello world"
    assert b"".join(store.iter_bytes("o_abc123", size=3)) == b"hello world"
    assert store.put("o_abc123", [b"replaced"]) == 8
    with store.open("o_abc123") as fh:
        assert fh.read() == b"replaced"
    store.delete("o_abc123")
    assert not store.exists("o_abc123")
    store.delete("o_abc123")  # deleting twice is fine
    with pytest.raises(NotFound):
        store.open("o_abc123")
    assert files_under(store.root) == []


def test_objects_fan_out_by_name(store: LocalStore) -> None:
    store.put("o_aaXy", [b"1"])
    store.put("o_bbXy", [b"2"])
    store.put("o_ccZZ", [b"3"])
    assert [p.relative_to(store.root).as_posix() for p in files_under(store.root)] == [
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


def test_crash_mid_write_leaves_nothing(store: LocalStore) -> None:
    def dying() -> Iterator[bytes]:
        yield b"x" * 100_000
        yield b"y" * 100_000
        raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        store.put("o_crash1", dying())
    assert not store.exists("o_crash1")
    assert files_under(store.root) == []  # no object, no temp file


def test_crash_while_replacing_keeps_the_old_object(store: LocalStore) -> None:
    store.put("o_keep01", [b"old version"])

    def dying() -> Iterator[bytes]:
        yield b"new"
        raise OSError(5, "I/O error")

    with pytest.raises(TransientError):
        store.put("o_keep01", dying())
    with store.open("o_keep01") as fh:
        assert fh.read() == b"old version"
    assert len(files_under(store.root)) == 1


@pytest.mark.parametrize(
    "name",
    ["", "../escape", "a/b", "/abs", ".hidden", "a..b", "x" * 201, "name with space", "é", "a\x00"],
)
def test_names_are_validated(store: LocalStore, name: str) -> None:
    with pytest.raises(ValueError):
        store.put(name, [b"x"])
    with pytest.raises(ValueError):
        store.open(name)
    with pytest.raises(ValueError):
        store.delete(name)
    with pytest.raises(ValueError):
        store.exists(name)
    assert files_under(store.root.parent) == []


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
    with pytest.raises(ConfigError):
        open_store("s3://bucket/prefix")
    with pytest.raises(ConfigError):
        open_store("ftp://nowhere")
