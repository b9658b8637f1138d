"""Delivery: drain the outbox to the next hop.

Per recipient: 2xx sent; 4xx or no connection deferred with exponential backoff and
jitter; 5xx or past its lifetime bounced, with one DSN to the envelope sender (never a
bounce to a bounce). Everything we send carries the loop stamp, and no internal
``X-Sealmail-*`` header ever leaves.

An item with ``require_tls`` goes out only over STARTTLS with a certificate that verifies.
When the next hop cannot give that, nothing is sent: the recipient is ``rerouted`` (no
bounce, no DSN) and its message goes back to the pipeline to be sealed to the portal
(:mod:`gateway.delivery.reroute`). Outcomes the database cannot take yet are kept by the
worker (:mod:`gateway.delivery.outcomes`).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections import defaultdict
from collections.abc import Callable

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from conversations import events
from core import error_kinds, logcontext, outbox
from core.backoff import backoff
from core.errors import TransientError
from core.evidence import log as evidence
from core.models import OutboxRecipient, SealedObject, Tenant, now
from core.services import Services
from gateway import onboarding
from gateway.delivery.dsn import Failure, status_of
from gateway.delivery.nexthop import NextHops, hop_for
from gateway.delivery.outcomes import DeliveryState
from gateway.delivery.relay import RelayPool, Reply, TlsUnavailable
from gateway.delivery.report import NOTICES, RELAYED, accepted_at, count, enqueue_dsn
from gateway.delivery.reroute import reroute_to_portal
from gateway.delivery.streamed import STREAM_ABOVE, Payload, Streamed
from gateway.stamp import stamp, stamp_stream

log = logging.getLogger("sealmail.gateway.delivery")

CLAIM_LIMIT = 200

# The state of callers that keep none of their own (one-off rounds: ``run_once``, tools,
# tests): what one such round could not write, the next one writes, as in a worker.
_ONE_OFF_ROUNDS = DeliveryState()


def _lease_seconds(services: Services) -> float:
    return max(services.settings.queue_lease, services.settings.relay_timeout * 2)


async def deliver_due(
    services: Services,
    pool: NextHops | RelayPool,
    owner: str,
    stop: asyncio.Event | None = None,
    state: DeliveryState | None = None,
) -> int:
    """Send what is due; returns how many recipients were attempted. ``pool`` is the
    worker's :class:`NextHops` (a bare :class:`RelayPool` serves as the global relay);
    ``state`` the worker's memory between rounds (one-off rounds share one)."""
    kept = state if state is not None else _ONE_OFF_ROUNDS
    hops = pool if isinstance(pool, NextHops) else NextHops(services.settings, default=pool)
    await kept.record_unrecorded()
    if owner in kept.lease_unsure and not kept.unrecorded:
        # the last claim failed with the database and may have committed all the same:
        # give back every lease of ours (none is in flight between rounds, and no outcome
        # is waiting to be written) rather than let them wait out the lease
        async with services.db.write_gate.hold(), services.db.session() as s:
            await s.execute(
                update(OutboxRecipient)
                .where(OutboxRecipient.lease_owner == owner)
                .values(lease_owner=None, lease_until=0.0)
            )
            await s.commit()
        kept.lease_unsure.discard(owner)
    try:
        async with services.db.write_gate.hold(), services.db.session() as s:
            claimed = await outbox.claim_due(
                s, owner, CLAIM_LIMIT, _lease_seconds(services), not services.db.is_sqlite
            )
    except Exception:
        kept.lease_unsure.add(owner)
        raise
    if not claimed:
        return 0
    items: dict[str, list[outbox.Claimed]] = defaultdict(list)
    for c in claimed:
        items[c.outbox_id].append(c)
    slots = asyncio.Semaphore(max(1, services.settings.delivery_concurrency))
    relays: dict[str, str | None] = {}  # each tenant's own relay, read once this round
    outcomes = _Outcomes(services, kept)

    async def one(group: list[outbox.Claimed]) -> int:
        # each runs in a task of its own: its log lines name its message and tenant
        logcontext.set_context(group[0].message_id or group[0].outbox_id, group[0].tenant_id)
        async with slots:
            if stop is not None and stop.is_set():
                await _release(services, owner, group)
                return 0
            try:
                await _deliver_item(services, hops, owner, group, outcomes, relays)
            except Exception as exc:  # noqa: BLE001 - deferred with backoff, retried later
                log.error("delivery of %s failed: %s", group[0].outbox_id, exc, exc_info=exc)
                why = f"451 4.3.0 local error: {type(exc).__name__}"
                outage = error_kinds.is_outage(exc)
                await kept.write_or_keep(
                    functools.partial(_defer, services, owner, group, why, outage=outage)
                )
            return len(group)

    try:
        return sum(await asyncio.gather(*(one(g) for g in items.values())))
    finally:
        if hops is not pool:  # made for this round: its other hops' connections end here
            await hops.close()


async def _defer(
    services: Services, owner: str, group: list[outbox.Claimed], why: str, *, outage: bool
) -> None:
    """Failed on our side before an outcome: try again (only while the lease is still
    ours: otherwise whoever holds it decides). Our outage (:mod:`core.error_kinds`) costs
    no attempt and waits only seconds, so the mail goes as soon as the service is back;
    anything else waits the usual backoff."""
    settings = services.settings
    async with services.db.write_gate.hold(), services.db.session() as s:
        for c in group:
            if outage:
                delay = min(settings.queue_min_backoff, error_kinds.OUTAGE_RETRY_SECONDS)
                await outbox.mark_deferred(
                    s, c.recipient_id, owner, why, now() + delay, count=False
                )
                continue
            delay = backoff(c.attempts + 1, settings.queue_min_backoff, settings.queue_max_backoff)
            await outbox.mark_deferred(s, c.recipient_id, owner, why, now() + delay)
        await s.commit()


async def _release(services: Services, owner: str, group: list[outbox.Claimed]) -> None:
    async with services.db.write_gate.hold(), services.db.session() as s:
        for c in group:
            await outbox.release(s, c.recipient_id, owner)
        await s.commit()


async def _deliver_item(
    services: Services,
    hops: NextHops,
    owner: str,
    group: list[outbox.Claimed],
    outcomes: _Outcomes,
    relays: dict[str, str | None] | None = None,
) -> None:
    first = group[0]
    if first.tenant_id is None:
        raise TransientError(f"outbox item {first.outbox_id} has no tenant to open it with")
    require_tls = first.require_tls  # read with the claim
    relays = {} if relays is None else relays
    async with services.db.session() as s:
        if first.tenant_id not in relays:  # a change of relay applies from the next round
            relays[first.tenant_id] = await s.scalar(
                select(Tenant.relay).where(Tenant.id == first.tenant_id)
            )
        hop = hop_for(relays[first.tenant_id] or "", services.settings)
        obj = await s.get(SealedObject, first.object_id)
        if obj is not None and obj.size > STREAM_ABOVE:  # never held whole: read per attempt
            read = await services.vault.chunks(s, first.tenant_id, first.object_id)
        else:
            read, whole = None, await services.vault.read(s, first.tenant_id, first.object_id)
    key = services.keyring.stamp_key
    if read is not None:
        head, stamped = await asyncio.to_thread(stamp_stream, key, first.tenant_id, read)
        data: Payload = Streamed(head, stamped, obj.size if obj else 0)
    else:
        data = stamp(key, first.tenant_id, whole)
    rcpts = [c.rcpt for c in group]
    if now() > first.expires_at:
        results = dict.fromkeys(rcpts, Reply(450, "4.4.7 message expired in the queue"))
        expired = True
    else:
        expired = False
        results, rerouted = await _send(hops, hop, first.mail_from, rcpts, data, require_tls)
        for batch, why in rerouted:
            await reroute_to_portal(services, owner, [c for c in group if c.rcpt in batch], why)
        group = [c for c in group if c.rcpt in results]
        if not group:
            return
    # the next hop has answered: its replies are written now, or kept until they can be
    # (a notice to the sender quotes the header block only)
    original = data.head if isinstance(data, Streamed) else data
    await outcomes.write(owner, group, original, results, expired)
    if first.message_id and not expired and results:
        reply = results.get(first.rcpt) or next(iter(results.values()))
        await onboarding.handed_back(
            services, first.tenant_id, first.message_id, hop, str(reply), reply.code
        )


async def _send(
    hops: NextHops, hop: str, mail_from: str, rcpts: list[str], data: Payload, require_tls: bool
) -> tuple[dict[str, Reply], list[tuple[list[str], str]]]:
    """Each batch of the hop (one per domain in ``mx`` mode) at once: the replies, and
    the batches that need verified TLS and cannot get it (with why)."""
    results: dict[str, Reply] = {}
    rerouted: list[tuple[list[str], str]] = []

    async def one(batch: list[str]) -> None:
        try:
            results.update(await hops.send(hop, mail_from, batch, data, require_tls))
        except TlsUnavailable as exc:
            if require_tls:
                rerouted.append((batch, str(exc)))
            else:
                results.update(dict.fromkeys(batch, Reply(451, f"4.7.5 {exc}")))
        except TransientError as exc:
            results.update(dict.fromkeys(batch, Reply(451, f"4.4.1 {exc}")))

    await asyncio.gather(*(one(b) for b in hops.batches(hop, rcpts)))
    return results, rerouted


class _Outcomes:
    """Group commit of one round's outcomes: a delivery hands its next hop's replies over
    and waits; the first one waiting writes every outcome waiting, in one transaction per
    batch (one commit and one hold of the write gate for many, not one each), in its own
    task, so a stopped worker's cancellation reaches the transaction. When that
    transaction fails, each outcome is written alone or, failing that too, kept for the
    next round (:class:`DeliveryState`), as before."""

    BATCH = 50

    def __init__(self, services: Services, kept: DeliveryState) -> None:
        self._services, self._kept = services, kept
        self._waiting: list[tuple[tuple, asyncio.Future[None]]] = []
        self._writing = False

    async def write(
        self,
        owner: str,
        group: list[outbox.Claimed],
        data: bytes,
        results: dict[str, Reply],
        expired: bool,
    ) -> None:
        """Return once the outcome is written or kept."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(((owner, group, data, results, expired), done))
        if self._writing:  # another delivery of the round is writing: it takes this too
            await done
            return
        self._writing = True
        batch: list[tuple[tuple, asyncio.Future[None]]] = []
        try:
            while self._waiting:
                batch = self._waiting[: self.BATCH]
                del self._waiting[: self.BATCH]
                await self._write(batch)
                batch = []
        finally:  # cancelled (the worker stops): what is not written waits for a next round
            self._writing = False
            for args, waiting in batch + self._waiting:
                if not waiting.done():
                    self._kept.keep(functools.partial(_record, self._services, *args), None)
                    waiting.set_result(None)
            self._waiting.clear()

    async def _write(self, batch: list[tuple[tuple, asyncio.Future[None]]]) -> None:
        try:
            await _write_outcomes(self._services, [args for args, _ in batch])
        except Exception as exc:  # noqa: BLE001 - each alone, or kept for the next round
            if len(batch) > 1:
                log.info("writing %d outcomes at once failed (%s)", len(batch), exc)
                for args, _ in batch:
                    await self._kept.write_or_keep(
                        functools.partial(_record, self._services, *args)
                    )
            else:  # as one outcome's own failure always was: kept for the next round
                self._kept.keep(functools.partial(_record, self._services, *batch[0][0]), exc)
        for _, done in batch:
            if not done.done():
                done.set_result(None)


async def _record(
    services: Services,
    owner: str,
    group: list[outbox.Claimed],
    data: bytes,
    results: dict[str, Reply],
    expired: bool,
) -> None:
    """One outcome in a transaction of its own (a kept outcome, written at a later round)."""
    await _write_outcomes(services, [(owner, group, data, results, expired)])


async def _write_outcomes(services: Services, batch: list[tuple]) -> None:
    """Outcomes (each the arguments of :func:`_record`) in one transaction; their lines
    are logged and counted once it is committed."""
    async with services.db.write_gate.hold(), services.db.session() as s:
        after = [await _record_in(services, s, *args) for args in batch]
        await s.commit()
    for report in after:
        report()


async def _record_in(
    services: Services,
    s: AsyncSession,
    owner: str,
    group: list[outbox.Claimed],
    data: bytes,
    results: dict[str, Reply],
    expired: bool,
) -> Callable[[], None]:
    """Write one outcome in ``s`` (the caller commits); returns what to log and count
    once it is committed."""
    settings = services.settings
    failures: list[Failure] = []
    delays: list[Failure] = []
    for c in group:
        reply = results.get(c.rcpt, Reply(451, "4.3.0 no reply"))
        if reply.ok:
            sent = await outbox.mark_sent(s, c.recipient_id, owner, str(reply))
            if sent and c.kind in RELAYED and c.message_id and c.tenant_id:
                evidence.append(
                    s, c.tenant_id, evidence.DELIVERED, c.message_id, c.rcpt,
                    reply=str(reply)[:300], copy=c.kind,
                )  # fmt: skip
            if sent and c.kind in NOTICES and c.message_id and c.tenant_id:
                # the recipient's notice was accepted: the sender's /sent shows it
                events.record(
                    s, c.tenant_id, c.message_id, events.NOTIFIED, c.rcpt, "delivery",
                    reply=str(reply)[:300], **({"method": "pdf"} if c.kind == "pdf" else {}),
                )  # fmt: skip
        elif reply.permanent or expired:
            if await outbox.mark_bounced(s, c.recipient_id, owner, str(reply)):
                failures.append(Failure(c.rcpt, status_of(str(reply)), str(reply)))
                if c.kind in (*RELAYED, *NOTICES) and c.message_id and c.tenant_id:
                    evidence.append(
                        s, c.tenant_id, evidence.BOUNCED, c.message_id, c.rcpt,
                        reply=str(reply)[:300], copy=c.kind,
                    )  # fmt: skip
        else:
            delay = backoff(c.attempts + 1, settings.queue_min_backoff, settings.queue_max_backoff)
            if await outbox.mark_deferred(
                s, c.recipient_id, owner, str(reply), now() + delay
            ) and outbox.wants_warning(c, settings.queue_delay_warning, now()):
                if await outbox.mark_warned(s, c.recipient_id):
                    delays.append(Failure(c.rcpt, status_of(str(reply), "4.0.0"), str(reply)))
    first = group[0]
    if failures and first.kind != "dsn" and first.mail_from:
        await enqueue_dsn(services, s, first, data, failures)
    if delays:  # wants_warning already ruled out DSNs and the null sender
        await enqueue_dsn(services, s, first, data, delays, action="delayed")
    accepted = await accepted_at(s, first, results)

    def lines() -> None:
        # in the outcome's own log context: the delivery writing a batch may be another's
        logcontext.set_context(first.message_id or first.outbox_id, first.tenant_id)
        for c in group:
            log.info("%s to=<%s> %s", c.outbox_id, c.rcpt, results.get(c.rcpt))
            count(c, results.get(c.rcpt), expired, accepted)

    def report() -> None:
        contextvars.copy_context().run(lines)

    return report
