"""One verdict per recipient, recorded: the glue the pipeline calls.

``decide`` loads the tenant's policy, runs extraction and the rules in a thread (CPU work,
never on the loop), and maps each decision to a disposition with the recipient's keys. A
policy that cannot be read or evaluated raises: the pipeline defers the message (fail
closed), it is never sent in clear for want of a decision.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Set
from email.message import EmailMessage
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from conversations.models import TenantProtection
from conversations.protection import names, settings_of
from core.accounts.domains import tenant_domains
from core.errors import TransientError
from core.mime_stream import Skeleton
from core.models import Tenant
from core.policy import Decision, Limits, evaluate, extract_facts
from core.policy.disposition import disposition_for, upgraded_by_trigger
from core.policy.extract import extract_facts_skeleton
from core.policy.models import PolicyDecision
from core.policy.store import get_policy
from core.recipient_keys import methods_available
from core.services import Services
from gateway.pipeline.round_cache import RoundCache

STEP_UP_DISPOSITIONS = ("portal", "pdf")  # the copies read in the portal

log = logging.getLogger("sealmail.gateway.policy")


@dataclasses.dataclass(frozen=True)
class Verdict:
    disposition: str  # clear | tls | portal | pgp | smime | pdf | hold | reject
    action: str  # encrypt | require_tls | hold | reject | pass
    method: str  # auto | portal | pgp | smime | pdf, "" unless encrypt
    rule: str  # the rule that matched, "" for the default or a trigger
    reason: str  # one line for people: MessageRecipient.reason, the portal
    explanation: dict[str, Any]
    # why opening it in the portal needs a passkey or the sender's passphrase ("" = not)
    step_up: str = ""


async def decide(
    services: Services,
    session: AsyncSession,
    tenant: Tenant,
    *,
    raw: bytes,
    mail_from: str,
    recipients: list[str],
    trigger_reason: str | None,
    released: Set[str] = frozenset(),
    cache: RoundCache | None = None,
    skeleton: Skeleton | None = None,
    parsed: EmailMessage | None = None,
) -> dict[str, Verdict]:
    """One verdict per recipient. A large message is judged from its ``skeleton``
    (:func:`core.policy.extract.extract_facts_skeleton`) instead of ``raw``; ``parsed`` is
    ``raw`` already parsed (:func:`core.mime_text.parse_message`), read, never changed."""
    cache = cache or RoundCache()
    policy = await cache.get(("policy", tenant.id), lambda: get_policy(session, tenant.id))
    domains = await cache.get(("domains", tenant.id), lambda: tenant_domains(session, tenant.id))
    step_up = await cache.get(("step_up", tenant.id), lambda: _step_up(session, tenant.id))
    released_lower = {r.strip().lower() for r in released}

    def run() -> list[Decision]:
        facts = (
            extract_facts(raw, Limits(), parsed)
            if skeleton is None
            else extract_facts_skeleton(skeleton, Limits())
        )
        decisions = evaluate(
            policy,
            facts,
            mail_from=mail_from,
            recipients=recipients,
            tenant_domains=domains,
            detect=step_up.detectors,
        )
        again = [
            d.rcpt
            for d in decisions
            if d.action == "hold" and d.rcpt.strip().lower() in released_lower
        ]
        if not again:
            return decisions
        # a compliance officer released the hold: decide again without the hold rules
        redo = evaluate(
            policy.without_action("hold"),
            facts,
            mail_from=mail_from,
            recipients=again,
            tenant_domains=domains,
        )
        by_rcpt = {d.rcpt: d for d in redo}
        return [
            dataclasses.replace(
                by_rcpt[d.rcpt],
                explanation={**by_rcpt[d.rcpt].explanation, "released_from": d.rule},
            )
            if d.rcpt in by_rcpt
            else d
            for d in decisions
        ]

    decisions = await asyncio.to_thread(run)
    verdicts: dict[str, Verdict] = {}
    for d in decisions:
        v = await _verdict(services, session, tenant, d, trigger_reason, cache)
        why = step_up.reason(v.disposition, v.rule, v.explanation.get("detectors", {}))
        verdicts[d.rcpt] = dataclasses.replace(v, step_up=why) if why else v
    return verdicts


_DETECTOR_WORDS = {
    "credit_card": "a payment card number",
    "us_ssn": "a US social security number",
    "iban": "a bank account number (IBAN)",
    "uk_nino": "a UK national insurance number",
    "email_addresses": "a list of email addresses",
}


@dataclasses.dataclass(frozen=True)
class StepUp:
    """A tenant's step-up setting (conversations.models.TenantProtection), as the pipeline
    applies it to the portal's recipients."""

    mode: str = "off"
    detectors: tuple[str, ...] = ()
    rules: frozenset[str] = frozenset()

    @classmethod
    def of(cls, row: TenantProtection) -> StepUp:
        return cls(
            row.step_up, tuple(names(row.step_up_detectors)), frozenset(names(row.step_up_rules))
        )

    def reason(self, disposition: str, rule: str, counts: dict[str, int]) -> str:
        """Why this recipient's copy needs step-up, in words for the recipient; "" if not."""
        if disposition not in STEP_UP_DISPOSITIONS or self.mode == "off":
            return ""
        if self.mode == "always":
            return "the sender's organisation asks for it for every secure message"
        if self.mode == "detectors":
            found = [n for n in self.detectors if counts.get(n, 0) > 0]
            if found:
                return "it contains " + " and ".join(_DETECTOR_WORDS.get(n, n) for n in found)
        if self.mode == "rules" and rule in self.rules:
            return "the sender's organisation protects messages like this one"
        return ""


async def _verdict(
    services: Services,
    session: AsyncSession,
    tenant: Tenant,
    d: Decision,
    trigger_reason: str | None,
    cache: RoundCache,
) -> Verdict:
    action, method, explanation = d.action, d.method, dict(d.explanation)
    by = f"rule {d.rule!r}" if d.rule else _default_words(d)
    if trigger_reason and upgraded_by_trigger(action):
        explanation["trigger"] = trigger_reason
        explanation["upgraded_from"] = action
        action, method = "encrypt", "auto"
        by = f"{trigger_reason} (policy: {by} → {d.action})"
    methods: set[str] = set()
    pdf_when_no_key = False
    if action == "encrypt" and method == "auto":
        if tenant.wkd_lookup:
            await _wkd(services, session, tenant, d.rcpt, explanation)
        methods = await methods_available(session, tenant.id, d.rcpt)
        pdf_when_no_key = await cache.get(
            ("pdf_when_no_key", tenant.id), lambda: _pdf_when_no_key(session, tenant.id)
        )
    disposition = disposition_for(action, method, methods, pdf_when_no_key=pdf_when_no_key)
    explanation["disposition"] = disposition
    what = f"{action} {method} → {disposition}" if action == "encrypt" else action
    if action == "require_tls":
        what = "require_tls → tls"
    reason = f"{by}: {what}"
    return Verdict(disposition, action, method, d.rule, reason[:500], explanation)


async def _step_up(session: AsyncSession, tenant_id: str) -> StepUp:
    """The tenant's step-up setting (a plain value for the round's cache)."""
    return StepUp.of(await settings_of(session, tenant_id))


async def _pdf_when_no_key(session: AsyncSession, tenant_id: str) -> bool:
    """The tenant's "PDF when the recipient has no key" (a plain value for the cache)."""
    return bool((await settings_of(session, tenant_id)).pdf_when_no_key)


async def _wkd(
    services: Services, session: AsyncSession, tenant: Tenant, rcpt: str, explanation: dict
) -> None:
    """Look the recipient's key up in their domain's Web Key Directory (cached). A lookup
    that cannot complete now leaves the portal as the method: still encrypted."""
    from gateway.pipeline.crypto.wkd import lookup_and_store

    try:
        explanation["wkd"] = (
            "found" if await lookup_and_store(services, session, tenant, rcpt) else "not found"
        )
    except TransientError as exc:
        log.info("WKD lookup for a recipient of tenant %s failed: %s", tenant.id, exc)
        explanation["wkd"] = "unavailable"


def _default_words(d: Decision) -> str:
    if d.explanation.get("default") == "encrypt_external":
        return "default (encrypt all external mail)"
    return "no rule matched"


async def record(
    session: AsyncSession, message_id: str, tenant_id: str, verdicts: dict[str, Verdict]
) -> None:
    """One ``policy_decisions`` row per recipient (the caller commits)."""
    for rcpt, v in verdicts.items():
        session.add(
            PolicyDecision(
                message_id=message_id,
                tenant_id=tenant_id,
                rcpt=rcpt,
                action=v.action,
                method=v.method,
                disposition=v.disposition,
                rule=v.rule[:200],
                explanation=json.dumps(v.explanation, sort_keys=True, default=str),
            )
        )
