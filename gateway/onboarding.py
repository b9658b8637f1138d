"""The gateway's small calls into a tenant's onboarding check (:mod:`core.setup`).

Intake says a message arrived and how its tenant was identified (or why a session was
refused), the pipeline what the policy decided and whether the message was sealed or
passed, delivery what the next hop answered. Each call first asks the per-process cache of
open checks (:mod:`core.setup.watch`), so mail of tenants without a check pays no query.
Nothing here may fail or slow mail: every error is logged and swallowed, every wait is
bounded, and a refused session's fault is written by a task of its own after the reply.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

from core.services import Services
from core.setup import checks, faults, watch

log = logging.getLogger("sealmail.gateway.onboarding")

BOUND_SECONDS = 1.0  # the longest a check may hold up a step of mail
_TASKS: set[asyncio.Task[None]] = set()

# how intake identified the tenant (envelope.identified_by)
BY_TOKEN = "token"  # noqa: S105 - a way of identifying
BY_AUTH = "auth"
BY_NETWORK = "network"
BY_JOURNAL = "journal"
HOW = {
    BY_TOKEN: "by its connector token (header X-Sealmail-Tenant-Token) from an allowed network",
    BY_AUTH: "by SMTP sign-in (AUTH) with the tenant's credentials",
    BY_NETWORK: "by its client address alone, in the tenant's private range",
    BY_JOURNAL: "by the tenant's journal address, from an allowed network",
}
SEALED_DISPOSITIONS = {
    "portal": "for the portal",
    "pgp": "with OpenPGP",
    "smime": "with S/MIME",
    "pdf": "as an encrypted PDF",
}


async def _guarded(what: str, work: Callable[[], Awaitable[object]]) -> None:
    try:
        async with asyncio.timeout(BOUND_SECONDS):
            await work()
    except Exception as exc:  # noqa: BLE001 - a check never stops mail
        log.warning("onboarding check: could not record %s: %s", what, type(exc).__name__)


def _in_background(what: str, work: Callable[[], Awaitable[object]]) -> None:
    task = asyncio.get_running_loop().create_task(_guarded(what, work))
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)


# --- intake ---------------------------------------------------------------------------


async def accepted(
    services: Services, tenant_id: str, message_id: str, client_ip: str, mail_from: str, how: str
) -> None:
    """Intake answered 250: the message arrived and its tenant is known. Awaited (only for
    a tenant with an open check) so the pipeline finds the check watching it."""

    async def work() -> None:
        if await watch.open_check_of(services.db, tenant_id) is None:
            return
        await watch.record_message(
            services.db,
            tenant_id,
            message_id,
            [
                faults.arrived(client_ip, mail_from),
                (checks.IDENTIFIED, True, f"Identified {HOW.get(how, how)}."),
            ],
            claim=True,
        )

    await _guarded("an arrival", work)


async def _attribute(services: Services, token: str, mail_from: str) -> tuple[str | None, bool]:
    """The tenant a refused session belongs to, and whether its token was valid."""
    async with services.db.session() as s:
        by_token = await faults.tenant_of_token(s, token) if token else None
        if by_token:
            return by_token, True
        return await faults.tenant_of_sender(s, mail_from), False


async def _fault(
    services: Services,
    tenant_id: str,
    client_ip: str,
    mail_from: str,
    build: Callable[..., Awaitable[faults.Fault]] | faults.Fault,
) -> None:
    if await watch.open_check_of(services.db, tenant_id) is None:
        return
    if isinstance(build, tuple):
        fault = build
    else:
        async with services.db.session() as s:
            fault = await build(s, tenant_id)
    await watch.record_fault(services.db, tenant_id, [faults.arrived(client_ip, mail_from), fault])


def refused(
    services: Services,
    *,
    client_ip: str,
    mail_from: str,
    token: str = "",
    tenant_id: str | None = None,
    why: str,
) -> None:
    """A session refused with 550 relay access denied. ``why``: ``network`` (client not in
    any allowed network), ``token`` (at DATA: no token, or one that does not fit),
    ``sender`` (the envelope sender's domain is not ``tenant_id``'s). Costs nothing unless
    some check is open; the fault is written after the reply, by a task of its own."""

    async def work() -> None:
        if not await watch.any_open(services.db):
            return
        tid, token_valid = tenant_id, False
        if tid is None:
            tid, token_valid = await _attribute(services, token, mail_from)
        if tid is None:
            return
        build: Callable[..., Awaitable[faults.Fault]] | faults.Fault
        if why == "sender":
            build = lambda s, t: faults.domain_fault(s, t, mail_from)  # noqa: E731
        elif why == "network" or token_valid:
            build = lambda s, t: faults.network_fault(s, t, client_ip)  # noqa: E731
        elif token:
            build = faults.unknown_token_fault()
        else:
            build = faults.no_token_fault()
        await _fault(services, tid, client_ip, mail_from, build)

    if watch.watch_of(services.db).surely_none():
        return  # the usual case: no task, no query
    try:
        _in_background("a refusal", work)
    except RuntimeError:  # no running loop: nothing to record with
        pass


# --- pipeline -------------------------------------------------------------------------


async def decided(
    services: Services,
    tenant_id: str,
    message_id: str,
    verdicts: Iterable[tuple[str, str, str, str]],
) -> None:
    """The pipeline's pass is recorded: ``(disposition, action, method, rule)`` per
    recipient. The rule and action, never content."""

    async def work() -> None:
        if await watch.open_check_of(services.db, tenant_id) is None:
            return
        seen = sorted(set(verdicts))
        words = "; ".join(
            f"{action}{f' ({method})' if method else ''}"
            f" by {f'rule {rule!r}' if rule else 'the policy default or a built-in trigger'}"
            for _d, action, method, rule in seen
        )
        steps = [(checks.DECIDED, True, f"The policy decided: {words}.")]
        dispositions = {d for d, *_ in seen}
        finish = ""
        sealed = [SEALED_DISPOSITIONS[d] for d in sorted(dispositions) if d in SEALED_DISPOSITIONS]
        if sealed:
            steps.append((checks.SEALED, True, f"Sealed {', '.join(sealed)}."))
        if dispositions & {"clear", "tls"}:
            steps.append((checks.PASSED, True, "Passed on as it came (not encrypted)."))
        if dispositions - set(SEALED_DISPOSITIONS) - {"clear", "tls"}:
            steps.append(
                (
                    checks.HELD,
                    True,
                    "Held, rejected or archived by the policy, so nothing is handed on: "
                    "the route works. See Quarantine for held messages.",
                )
            )
            if not sealed and not dispositions & {"clear", "tls"}:
                finish = checks.OK
        await watch.record_message(services.db, tenant_id, message_id, steps, finish=finish)

    await _guarded("a decision", work)


# --- delivery -------------------------------------------------------------------------


async def handed_back(
    services: Services, tenant_id: str, message_id: str, hop: str, reply: str, code: int
) -> None:
    """The next hop answered for the watched message: 2xx ends the check ``ok``, 5xx
    ``fault``; 4xx is noted and the check goes on (delivery retries)."""

    async def work() -> None:
        if await watch.open_check_of(services.db, tenant_id) is None:
            return
        where = hop or "the next hop"
        if 200 <= code < 300:
            step = (checks.HANDED_BACK, True, f"Handed to {where}, which answered: {reply}")
            finish = checks.OK
        elif code >= 500:
            step = (checks.REFUSED, False, f"{where} refused the message: {reply}")
            finish = checks.FAULT
        else:
            step = (checks.DEFERRED, False, f"{where} answered {reply}; it is retried.")
            finish = ""
        await watch.record_message(services.db, tenant_id, message_id, [step], finish=finish)

    await _guarded("a hand-off", work)
