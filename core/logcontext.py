"""What a log line is about: the queue id and tenant of the message being handled.

Set by the gateway per SMTP transaction (intake), per message (pipeline) and per outbox
item (delivery); the logging set-up (``sealmail.logs``) adds them to every record. Context
variables follow asyncio tasks, so concurrent sessions and deliveries never mix them up.
Only ids go here — never addresses, subjects or content.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

queue_id_var: ContextVar[str | None] = ContextVar("sealmail_queue_id", default=None)
tenant_var: ContextVar[str | None] = ContextVar("sealmail_tenant", default=None)


def set_context(queue_id: str | None = None, tenant: str | None = None) -> None:
    """Set both for the rest of the current task (``None`` clears one)."""
    queue_id_var.set(queue_id)
    tenant_var.set(tenant)


def set_tenant(tenant: str | None) -> None:
    tenant_var.set(tenant)


def set_queue_id(queue_id: str | None) -> None:
    queue_id_var.set(queue_id)


@contextlib.contextmanager
def log_context(queue_id: str | None = None, tenant: str | None = None) -> Iterator[None]:
    """Both set for the ``with`` block, restored after."""
    q, t = queue_id_var.set(queue_id), tenant_var.set(tenant)
    try:
        yield
    finally:
        queue_id_var.reset(q)
        tenant_var.reset(t)


def current() -> dict[str, str]:
    """The known fields, for a log record."""
    out: dict[str, str] = {}
    if (q := queue_id_var.get()) is not None:
        out["queue_id"] = q
    if (t := tenant_var.get()) is not None:
        out["tenant"] = t
    return out
