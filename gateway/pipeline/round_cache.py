"""What every message of one pipeline round reads alike, read once per round.

A round (:func:`gateway.pipeline.runner.process_pending`) claims up to 50 messages and
processes them within a second or so. Their tenant's policy, domains and brands are the
same for all of them, and reading each again per message cost three queries a message. A
change saved while a round runs applies from the next round, as it would to a message that
arrived a moment later. Only plain values are kept (never rows of one message's session).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Any


class RoundCache:
    """Values by key for one round; a value that fails to load is not kept."""

    def __init__(self) -> None:
        self._values: dict[Hashable, Any] = {}

    async def get(self, key: Hashable, load: Callable[[], Awaitable[Any]]) -> Any:
        """The value of ``key``, loaded by ``load()`` the first time in this round."""
        if key not in self._values:
            self._values[key] = await load()
        return self._values[key]
