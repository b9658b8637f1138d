"""Prometheus metrics: counters the gateway increments, gauges read from the database.

Layering: this module is in ``core`` because both sides need it: ``gateway`` counts
(accepted, replies, deliveries, decisions) and ``portal`` exposes them at ``/metrics``.
Counters live in the memory of the process that counted them, so every process that
counts must be scraped: the portal's ``/metrics`` serves the counters of its own process
(all of them under ``serve --role all``), and ``serve --role smtp|worker`` serve the same
page on ``metrics_listen`` when that is set (see ``docs/deploy/README.md``). Queue depth
and oldest age are read from the database at scrape time, so they are right in any
process. Labels carry tenant ids, dispositions, kinds and reply codes only — never
addresses, subjects or content; the tenant label is bounded by the number of tenants.

Nothing happens at import time: the registry is made on first use.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import Message, OutboxItem, OutboxRecipient

CONTENT_TYPE = CONTENT_TYPE_LATEST
# accepted → delivered: seconds for a relay on the LAN up to a day of retries
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 86400)
OUTBOX_STATES = ("queued", "deferred", "held")


class Metrics:
    """The process's metrics, in a registry of its own (not the global default one)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.accepted = Counter(
            "sealmail_messages_accepted",
            "Messages accepted by SMTP (answered 250), by tenant.",
            ["tenant"],
            registry=r,
        )
        self.smtp_replies = Counter(
            "sealmail_smtp_replies",
            "SMTP replies sent to clients, by class (2xx, 4xx, 5xx, ...) and code.",
            ["code_class", "code"],
            registry=r,
        )
        self.deliveries = Counter(
            "sealmail_deliveries",
            "Delivery attempts per recipient by outcome (sent, deferred, bounced, rerouted).",
            ["tenant", "kind", "result"],
            registry=r,
        )
        self.decisions = Counter(
            "sealmail_pipeline_decisions",
            "Recipients decided by the pipeline, by tenant and disposition.",
            ["tenant", "disposition"],
            registry=r,
        )
        self.latency = Histogram(
            "sealmail_delivery_latency_seconds",
            "From the 250 at intake to the relay's 2xx, per recipient, by outbox kind.",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "sealmail_queue_depth",
            "Work waiting now (read from the database at scrape time): received messages "
            "not yet through the pipeline, and outbox recipients by state.",
            ["queue", "state"],
            registry=r,
        )
        self.queue_oldest = Gauge(
            "sealmail_queue_oldest_age_seconds",
            "Age of the oldest waiting entry (0 when empty), read at scrape time.",
            ["queue"],
            registry=r,
        )

    # --- counting (cheap, synchronous, never raises into the caller) -------------------

    def reply_sent(self, line: str) -> None:
        code = line[:3]
        if len(code) == 3 and code.isdigit() and (len(line) == 3 or line[3] != "-"):
            self.smtp_replies.labels(code_class=f"{code[0]}xx", code=code).inc()

    # --- exposition ---------------------------------------------------------------------

    async def refresh_queue(self, session: AsyncSession) -> None:
        """Set the queue gauges from the database (every process sees the same)."""
        t = time.time()
        received = await session.execute(
            select(func.count(), func.min(Message.received_at)).where(Message.state == "received")
        )
        count, oldest = received.one()
        self.queue_depth.labels(queue="intake", state="received").set(count or 0)
        self.queue_oldest.labels(queue="intake").set(max(0.0, t - oldest) if oldest else 0.0)
        rows = await session.execute(
            select(OutboxRecipient.state, func.count(), func.min(OutboxItem.created_at))
            .join(OutboxItem, OutboxItem.id == OutboxRecipient.outbox_id)
            .where(OutboxRecipient.state.in_(OUTBOX_STATES))
            .group_by(OutboxRecipient.state)
        )
        by_state = {state: (n, first) for state, n, first in rows.all()}
        oldest_out = 0.0
        for state in OUTBOX_STATES:
            n, first = by_state.get(state, (0, None))
            self.queue_depth.labels(queue="outbox", state=state).set(n)
            if first and state != "held":
                oldest_out = max(oldest_out, t - first)
        self.queue_oldest.labels(queue="outbox").set(oldest_out)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


_METRICS: list[Metrics] = []


def metrics() -> Metrics:
    """This process's metrics (made on first use)."""
    if not _METRICS:
        _METRICS.append(Metrics())
    return _METRICS[0]


__all__ = ["CONTENT_TYPE", "Metrics", "metrics"]
