"""What a policy would do with a message, per recipient: the one dry run behind the API's
``/api/v1/policy/dry-run`` and the admin's policy editor (``/admin/policy``). The built-in
triggers (a subject keyword, ``X-Sealmail-Encrypt``, ``Sensitivity``) upgrade a decision the
way the gateway's pipeline does, and ``auto`` is resolved to the method the recipient's keys
allow, so the answer is the one the next real message would get."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from conversations.protection import settings_of
from core.accounts.domains import tenant_domains
from core.models import Tenant
from core.policy import Limits, evaluate, extract_facts
from core.policy.disposition import disposition_for, upgraded_by_trigger
from core.policy.model import Policy
from core.recipient_keys import methods_available

_YES = ("yes", "true", "1", "on")


def builtin_trigger(facts: Any, tenant: Tenant, keywords: tuple[str, ...]) -> str | None:
    """The built-in triggers of SPEC §3, as the gateway's ``triggers`` judges them."""
    lowered = facts.subject.lower()
    for keyword in keywords:
        if keyword.lower() in lowered:
            return f"subject keyword {keyword}"
    if any(v.strip().lower() in _YES for v in facts.header_values("x-sealmail-encrypt")):
        return "header X-Sealmail-Encrypt"
    if tenant.sensitivity_trigger and any(
        v.strip().lower() == "company-confidential" for v in facts.header_values("sensitivity")
    ):
        return "header Sensitivity: Company-Confidential"
    return None


async def try_policy(
    s: AsyncSession,
    tenant: Tenant,
    policy: Policy,
    raw: bytes,
    *,
    mail_from: str,
    recipients: list[str],
    keywords: tuple[str, ...],
) -> list[dict[str, Any]]:
    """One entry per recipient: address, action, method, disposition, rule, explanation."""
    domains = await tenant_domains(s, tenant.id)

    def run() -> tuple[Any, list[Any]]:
        facts = extract_facts(raw, Limits())
        return facts, evaluate(
            policy, facts, mail_from=mail_from, recipients=recipients, tenant_domains=domains
        )

    facts, decisions = await asyncio.to_thread(run)
    pdf_when_no_key = (await settings_of(s, tenant.id)).pdf_when_no_key
    trigger = builtin_trigger(facts, tenant, keywords)
    out = []
    for d in decisions:
        action, method = d.action, d.method
        explanation = dict(d.explanation)
        if trigger and upgraded_by_trigger(action):
            explanation.update(trigger=trigger, upgraded_from=action)
            action, method = "encrypt", "auto"
        methods: set[str] = set()
        if action == "encrypt" and method == "auto":
            methods = await methods_available(s, tenant.id, d.rcpt)
        out.append(
            {
                "address": d.rcpt,
                "action": action,
                "method": method,
                "disposition": disposition_for(
                    action, method, methods, pdf_when_no_key=pdf_when_no_key
                ),
                "rule": d.rule,
                "explanation": explanation,
            }
        )
    return out
