"""Group commit for intake: the rows of messages accepted at the same moment share one
transaction (one fsync of the database) instead of one each.

A DATA handler whose sealed object is already durable hands its rows to
:meth:`GroupCommitter.commit` and waits; one task commits everything that is waiting in one
transaction, then the next batch (what arrived meanwhile), and so on. Each handler hears
about its own batch only after the commit returned, so ``250`` still means durable. If a
batch fails, its entries are tried one by one, so one bad row cannot cost the others
their ``250``; an entry that still fails gets the error (→ ``451``) and its sealed object is
deleted here, even if its SMTP client has gone away meanwhile.

The wait is bounded (``smtp_step_timeout``): an entry whose transaction has not begun when
the bound passes is withdrawn (its object deleted, the client told ``451``), so a commit
stuck behind the write gate or a busy batch never leaves a client in silence. Once its
transaction has begun, the outcome is not ours to abandon (a ``451`` for rows that then
commit would have the sender send the message twice): that wait is bounded by the
database driver's own timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time

from core.models import Message, MessageRecipient, SealedObject
from core.services import Services

log = logging.getLogger("sealmail.gateway.committer")

MAX_BATCH = 200


@dataclasses.dataclass
class Entry:
    obj: SealedObject
    message: Message
    recipients: list[MessageRecipient]
    done: asyncio.Future[None]
    started: bool = False  # its transaction has begun: it can no longer be withdrawn
    withdrawn: bool = False  # its client was told 451 before the transaction began


class GroupCommitter:
    def __init__(self, services: Services) -> None:
        self.services = services
        self._pending: list[Entry] = []
        self._task: asyncio.Task[None] | None = None

    async def commit(
        self,
        obj: SealedObject,
        message: Message,
        recipients: list[MessageRecipient],
        bound: float | None = None,
    ) -> None:
        """Return once the rows are committed; raise what made the commit fail, or
        :class:`TimeoutError` when nothing was begun within ``bound`` seconds (then nothing
        is stored: the object is deleted, the rows never written)."""
        entry = Entry(obj, message, recipients, asyncio.get_running_loop().create_future())
        self._pending.append(entry)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="intake-group-commit")
        t0 = time.monotonic()
        try:
            await asyncio.wait_for(asyncio.shield(entry.done), bound)
            return
        except TimeoutError:
            if entry.started:
                log.warning(
                    "commit of %s still running after %.0f s; waiting for its outcome",
                    message.id,
                    time.monotonic() - t0,
                )
            else:
                entry.withdrawn = True
                with contextlib.suppress(ValueError):
                    self._pending.remove(entry)
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self.services.store.delete, obj.storage_name)
                log.error(
                    "DATA waited %.0f s for the database commit (write gate or the batch "
                    "before it) (smtp_step_timeout); replied with a 4xx, nothing stored",
                    time.monotonic() - t0,
                )
                raise
        await asyncio.shield(entry.done)

    async def _run(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                await self._commit(batch)
            except Exception as exc:  # noqa: BLE001 - retried one by one below
                if len(batch) == 1:
                    await self._failed(batch[0], exc)
                    continue
                log.warning("group commit of %d messages failed (%s); one by one", len(batch), exc)
                for entry in batch:
                    try:
                        await self._commit([entry])
                    except Exception as one_exc:  # noqa: BLE001
                        await self._failed(entry, one_exc)
                    else:
                        entry.done.set_result(None)
            else:
                for entry in batch:
                    if not entry.done.done():
                        entry.done.set_result(None)

    async def _commit(self, batch: list[Entry]) -> None:
        db = self.services.db
        async with db.write_gate.hold(urgent=True), db.session() as s:
            # from here the entries' outcome is the transaction's (no await in between)
            batch = [e for e in batch if not e.withdrawn]
            if not batch:
                return
            for e in batch:
                e.started = True
            s.add_all(e.obj for e in batch)
            await s.flush()
            s.add_all(e.message for e in batch)
            await s.flush()
            s.add_all(r for e in batch for r in e.recipients)
            await s.commit()

    async def _failed(self, entry: Entry, exc: Exception) -> None:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.services.store.delete, entry.obj.storage_name)
        entry.done.set_exception(exc)
        entry.done.exception()  # retrieved, even if the handler is gone
