"""The storage interface every backend offers (:class:`ObjectStore`), its error for a
retained object (:class:`ObjectLocked`) and the object-name check.

Object names are random ids chosen by the caller, never derived from message content.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import BinaryIO, Protocol

from core.errors import PermanentError

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
    """``name`` if it is a valid object name (no path tricks), else :class:`ValueError`."""
    if not _NAME.match(name) or ".." in name:
        raise ValueError(f"invalid object name {name!r}")
    return name
