"""The file root: a 256-bit root key in a file readable only by its owner, with the earlier
roots, a rotation under way and the wrapped derivation secret beside it.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

from core.aead import KEY_SIZE, new_key, unwrap, wrap
from core.errors import ConfigError, IntegrityError
from core.hashing import hkdf
from core.private_files import fsync_dir, read_private
from core.rootkey.protocol import DERIVE_AAD


def _file_stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns)


def file_key_id(key: bytes) -> str:
    return "file:" + hashlib.sha256(b"sealmail-root-id" + key).hexdigest()[:16]


class FileRootKey:
    """A 256-bit root key in a file readable only by its owner (mode 0600).

    Beside ``root.key`` may lie ``root.key.old-<id>`` (earlier roots, kept so that tenant
    KEKs still wrapped by them open during and after a rotation), ``root.key.next`` (a root
    rotation under way) and ``root.key.derive`` (the derivation secret, wrapped by one of
    them). ``wrap`` always uses the current ``root.key``; ``unwrap`` tries each.
    """

    def __init__(
        self,
        key: bytes,
        others: list[bytes] | None = None,
        derivation_secret: bytes | None = None,
    ) -> None:
        for k in (key, *(others or [])):
            if len(k) != KEY_SIZE:
                raise ConfigError("root key file must hold exactly 32 bytes")
        self._key = key
        self._others = [k for k in (others or []) if k != key]
        self._secret = derivation_secret if derivation_secret is not None else key
        self.key_id = file_key_id(key)
        self._path: Path | None = None  # set by load(): a running process follows rotations
        self._stamp: tuple[int, int] | None = None
        self._looked_at = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FileRootKey({self.key_id})"

    @staticmethod
    def derive_path(path: str | os.PathLike[str]) -> Path:
        p = Path(path)
        return p.with_name(p.name + ".derive")

    @staticmethod
    def next_path(path: str | os.PathLike[str]) -> Path:
        p = Path(path)
        return p.with_name(p.name + ".next")

    @staticmethod
    def old_path(path: str | os.PathLike[str], key_id: str) -> Path:
        p = Path(path)
        return p.with_name(f"{p.name}.old-{key_id.removeprefix('file:')}")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> FileRootKey:
        p = Path(path)
        key = read_private(p, "root key")
        if len(key) != KEY_SIZE:
            raise ConfigError(f"root key {p} must hold exactly 32 bytes")
        others: list[bytes] = []
        extra = sorted(p.parent.glob(p.name + ".old-*"))
        if cls.next_path(p).exists():
            extra.append(cls.next_path(p))
        for q in extra:
            data = read_private(q, "root key")
            if len(data) != KEY_SIZE:
                raise ConfigError(f"root key {q} must hold exactly 32 bytes")
            others.append(data)
        secret = None
        dpath = cls.derive_path(p)
        if dpath.exists():
            blob = read_private(dpath, "derivation secret")
            ring = cls(key, others)
            try:
                secret = ring.unwrap(blob, DERIVE_AAD)
            except IntegrityError:
                raise ConfigError(
                    f"derivation secret {dpath} does not open with the root key files beside it"
                ) from None
        elif any(p.parent.glob(p.name + ".old-*")):
            raise ConfigError(
                f"derivation secret {dpath} is missing (the root key was rotated; restore it)"
            )
        ring = cls(key, others, secret)
        ring._path = p
        ring._stamp = _file_stamp(p)
        return ring

    def _follow(self, force: bool) -> bool:
        """Pick up a root rotation made by ``sealmail key rotate`` in another process: when
        ``root.key`` was replaced (or, with ``force``, at most once a second when a blob
        opens with none of our keys), read the files again. The derivation secret stays
        as it is (rotation keeps it). Returns True when something new was read."""
        if self._path is None:
            return False
        with self._lock:
            return self._follow_locked(force)

    def _follow_locked(self, force: bool) -> bool:
        assert self._path is not None
        now = time.monotonic()
        stamp = _file_stamp(self._path)
        if stamp == self._stamp and (not force or now - self._looked_at < 1.0):
            return False
        self._looked_at = now
        try:
            fresh = FileRootKey.load(self._path)
        except ConfigError:
            return False  # mid-rotation or damaged: keep what we have
        known = [self._key, *self._others]
        self._key, self.key_id, self._stamp = fresh._key, fresh.key_id, stamp
        self._others = [k for k in [*fresh._others, *known] if k != self._key]
        self._others = list(dict.fromkeys(self._others))
        return True

    @staticmethod
    def create(path: str | os.PathLike[str]) -> bool:
        """Write a new root key unless one exists. Returns True if it wrote one."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(p.parent, 0o700)
        try:
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as fh:
            fh.write(new_key())
            fh.flush()
            os.fsync(fh.fileno())
        fsync_dir(p.parent)
        return True

    @property
    def derivation_secret(self) -> bytes:
        return self._secret

    def wrap(self, key: bytes, aad: bytes) -> bytes:
        self._follow(force=False)  # never wrap with a root that was rotated away
        return wrap(self._key, key, aad)

    def unwrap(self, blob: bytes, aad: bytes) -> bytes:
        try:
            return self._unwrap(blob, aad)
        except IntegrityError:
            if not self._follow(force=True):
                raise
            return self._unwrap(blob, aad)

    def _unwrap(self, blob: bytes, aad: bytes) -> bytes:
        try:
            return unwrap(self._key, blob, aad)
        except IntegrityError:
            for other in self._others:
                try:
                    return unwrap(other, blob, aad)
                except IntegrityError:
                    continue
            raise

    def wrapped_by(self, blob: bytes, aad: bytes) -> str:
        """The key id of the root file that opens ``blob`` (IntegrityError if none)."""
        for k in (self._key, *self._others):
            try:
                unwrap(k, blob, aad)
                return file_key_id(k)
            except IntegrityError:
                continue
        raise IntegrityError("wrapped key opens with no root key file")

    def derive(self, purpose: str) -> bytes:
        """A key for one purpose (HMAC of the loop stamp, ...), derived with HKDF-SHA256."""
        return hkdf(self._secret, purpose)

    def check(self) -> None:
        """Nothing to reach: the file was read at load."""

    def probe(self) -> None:
        """Readiness: nothing to reach."""
