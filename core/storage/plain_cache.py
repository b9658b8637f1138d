"""Small decrypted objects kept in memory for a short time, for the pages that show them
again and again (the portal's message page: a message's metadata and its text part).

Nothing here is trusted on its own: :meth:`core.storage.vault.Vault.read_many` reads every
object's row in the same request and hands out a kept plaintext only when the row still
belongs to that tenant and its key was not destroyed, so a destroyed object is refused at
once in every process. Who may see an object is decided by the caller before it asks (the
portal's access and session checks run on every request). Entries are keyed by tenant and
object, live :attr:`PlainCache.ttl` seconds and are bounded in total bytes; nothing is ever
written to disk.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

TTL = 60.0  # seconds an entry is kept
MAX_BYTES = 16 * 1024 * 1024  # plaintext kept at most, least recently used dropped first
MAX_OBJECT = 256 * 1024  # larger objects are never kept


class PlainCache:
    """Plaintext of small sealed objects by (tenant, object), least recently used first out."""

    def __init__(self, ttl: float = TTL, max_bytes: int = MAX_BYTES) -> None:
        self.ttl = ttl
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, str], tuple[float, bytes]] = OrderedDict()
        self._derived: dict[tuple[str, str, str], Any] = {}
        self._bytes = 0

    def get(self, tenant_id: str, object_id: str) -> bytes | None:
        key = (tenant_id, object_id)
        item = self._items.get(key)
        if item is None:
            return None
        if item[0] <= time.monotonic():
            self.drop(tenant_id, object_id)
            return None
        self._items.move_to_end(key)
        return item[1]

    def put(self, tenant_id: str, object_id: str, data: bytes) -> None:
        if len(data) > MAX_OBJECT:
            return
        self.drop(tenant_id, object_id)
        self._items[(tenant_id, object_id)] = (time.monotonic() + self.ttl, data)
        self._bytes += len(data)
        while self._bytes > self.max_bytes and self._items:
            oldest = next(iter(self._items))
            self.drop(*oldest)

    def derived(
        self, tenant_id: str, object_id: str, data: bytes, name: str, make: Callable[[bytes], Any]
    ) -> Any:
        """``make(data)`` kept as long as the object is (e.g. its text cleaned for the page);
        ``data`` is what :meth:`Vault.read_many` just handed out, checked in this request."""
        if (tenant_id, object_id) not in self._items:
            return make(data)
        key = (tenant_id, object_id, name)
        if key not in self._derived:
            self._derived[key] = make(data)
        return self._derived[key]

    def drop(self, tenant_id: str, object_id: str) -> None:
        item = self._items.pop((tenant_id, object_id), None)
        if item is not None:
            self._bytes -= len(item[1])
            for key in [k for k in self._derived if k[:2] == (tenant_id, object_id)]:
                del self._derived[key]

    def clear(self) -> None:
        self._items.clear()
        self._derived.clear()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)
