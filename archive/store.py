"""The storage interface and its local filesystem implementation.

Object names are random ids chosen by the caller, never derived from message content.
Local writes are atomic and durable: temp file, fsync, rename, fsync of the directory.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from core.errors import ConfigError, NotFound, PermanentError, TransientError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


class ObjectLocked(PermanentError):
    """The object is under retention (S3 Object Lock) and cannot be deleted yet."""


class ObjectStore(Protocol):
    """What every store offers (the shape of Warehouse's ``IFileStorage``). Blocking calls:
    async code runs them with ``asyncio.to_thread``. Failures are the project's errors:
    :class:`TransientError` (retry later), :class:`NotFound`, :class:`ObjectLocked`."""

    def put(self, name: str, data: Iterable[bytes], retain_until: float | None = None) -> int:
        """Store ``data`` durably under ``name`` as it comes (never whole in memory);
        return the byte count. ``retain_until`` (unix seconds): the earliest date the
        object may be deleted, where the store can enforce it (S3 Object Lock)."""
        ...

    def open(self, name: str) -> BinaryIO:
        """A file to read the object from, chunk by chunk."""
        ...

    def delete(self, name: str) -> None:
        """Remove the object (no error if absent); :class:`ObjectLocked` while retained."""
        ...

    def exists(self, name: str) -> bool: ...

    def set_retention(self, name: str, until: float) -> None:
        """Extend the object's retention to ``until`` (never shortens it)."""
        ...

    def check(self) -> None:
        """Raise :class:`TransientError` if the store cannot be used now (cheap: /readyz)."""
        ...

    def verify_setup(self) -> None:
        """At start-up: raise :class:`ConfigError` (one line) if the store is not set up as
        configured (missing bucket, no access, Object Lock configured but not enabled)."""
        ...


def check_name(name: str) -> str:
    if not _NAME.match(name) or ".." in name:
        raise ValueError(f"invalid object name {name!r}")
    return name


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStore:
    """Objects as files under ``root/<2-char fan-out>/<name>``, directories mode 0700.

    Retention is not enforced here: ``retain_until`` and ``set_retention`` record nothing
    and ``delete`` always deletes (a local disk has no write-once mode; the retention
    rules in the database are what keeps an object). Use S3 with Object Lock for WORM.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def create(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.root, 0o700)

    def _path(self, name: str) -> Path:
        check_name(name)
        return self.root / name[-2:].lower() / name

    def put(self, name: str, data: Iterable[bytes], retain_until: float | None = None) -> int:
        path = self._path(name)
        try:
            if not path.parent.is_dir():
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                _fsync_dir(path.parent.parent)
            tmp = path.parent / f".{name}.{os.getpid()}.tmp"
            size = 0
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                with os.fdopen(fd, "wb") as fh:
                    for piece in data:
                        fh.write(piece)
                        size += len(piece)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            _fsync_dir(path.parent)
            return size
        except OSError as exc:
            raise TransientError(f"archive write failed: {exc.strerror}") from exc

    def open(self, name: str) -> BinaryIO:
        try:
            return self._path(name).open("rb")
        except FileNotFoundError:
            raise NotFound(f"object {name} not found") from None
        except OSError as exc:
            raise TransientError(f"archive read failed: {exc.strerror}") from exc

    def iter_bytes(self, name: str, size: int = 1024 * 1024) -> Iterator[bytes]:
        with self.open(name) as fh:
            while piece := fh.read(size):
                yield piece

    def delete(self, name: str) -> None:
        path = self._path(name)
        try:
            path.unlink()
            _fsync_dir(path.parent)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise TransientError(f"archive delete failed: {exc.strerror}") from exc

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def set_retention(self, name: str, until: float) -> None:
        """Nothing to record on a local disk (see the class docstring)."""
        self._path(name)

    def retained_until(self, name: str) -> float | None:
        self._path(name)
        return None

    def check(self) -> None:
        if not self.root.is_dir() or not os.access(self.root, os.W_OK):
            raise TransientError(f"archive {self.root} is not writable")

    def verify_setup(self) -> None:
        try:
            self.create()
        except OSError as exc:
            raise ConfigError(f"cannot create the archive {self.root}: {exc.strerror}") from None
        if not os.access(self.root, os.W_OK):
            raise ConfigError(f"archive {self.root} is not writable")


def open_store(
    archive_url: str, *, endpoint_url: str = "", region: str = "", object_lock: str = "off"
) -> ObjectStore:
    """The store named by the ``archive_url`` setting (no network call: an S3 client is
    made on first use)."""
    if archive_url.startswith("file://"):
        return LocalStore(archive_url[len("file://") :])
    if archive_url.startswith("s3://"):
        from archive.s3store import S3Store, parse_s3_url

        bucket, prefix = parse_s3_url(archive_url)
        return S3Store(
            bucket, prefix, endpoint_url=endpoint_url, region=region, object_lock=object_lock
        )
    raise ConfigError(f"archive_url {archive_url!r}: expected file:// or s3://")
