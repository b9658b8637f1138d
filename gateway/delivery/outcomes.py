"""Delivery outcomes not yet written, kept by the worker until the database takes them.

When the database goes away in the middle of a delivery, what happened cannot be recorded
at once; left alone, the recipients would wait out their whole lease after it came back,
and those the next hop had already accepted would be sent a second time. The worker keeps
each outcome (the next hop's replies, or "failed on our side: defer") and every round
first writes them, in order.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from core.models import now

log = logging.getLogger("sealmail.gateway.delivery")

KEEP_SECONDS = 3600.0  # a bound on what a worker keeps; then the lease decides, as after a crash


class DeliveryState:
    """What a worker's delivery remembers from one round to the next: the outcomes not yet
    written (``unrecorded``) and the owners whose last claim may have committed unseen
    (``lease_unsure``: their next round gives back every lease of theirs first)."""

    def __init__(self) -> None:
        self.lease_unsure: set[str] = set()
        self.unrecorded: list[tuple[float, Callable[[], Awaitable[None]]]] = []  # (until, write)

    async def write_or_keep(self, write: Callable[[], Awaitable[None]]) -> None:
        """Write an outcome now, or keep it for the next round."""
        try:
            await write()
        except Exception as exc:  # noqa: BLE001 - kept; the next round writes it
            self.keep(write, exc)

    def keep(self, write: Callable[[], Awaitable[None]], exc: BaseException | None) -> None:
        """Keep an outcome that could not be written (``exc``; ``None``: the worker is
        stopping) for the next round."""
        why = type(exc).__name__ if exc is not None else "stopping"
        log.warning("could not record a delivery outcome yet: %s", why)
        self.unrecorded.append((now() + KEEP_SECONDS, write))

    async def record_unrecorded(self) -> None:
        """Called at the start of a round, before any delivery task of it runs."""
        kept = self.unrecorded[:]
        self.unrecorded.clear()
        for until, write in kept:
            if now() > until:
                continue
            try:
                await write()  # each write changes a row only while its lease is still ours
            except Exception as exc:  # noqa: BLE001 - still down: the next round tries again
                log.warning("could not record a delivery outcome yet: %s", type(exc).__name__)
                self.unrecorded.append((until, write))
