"""The local filesystem store: objects as files, written atomically and durably (temp
file, fsync, rename, fsync of the directory)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from core.errors import ConfigError, NotFound, TransientError
from core.storage.interface import check_name


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
