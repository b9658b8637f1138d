"""Verdicts for a message written in the secure portal (a reply, a forward, or
``/compose``): each recipient at one of the tenant's domains (or a subdomain) gets it by
mail into their mailbox (``clear``); every other recipient gets the tenant's encryption as
if the encrypt trigger had fired (``auto``: OpenPGP with a key, S/MIME with a certificate,
else the portal). A policy rule that holds or rejects still stands for both.

The explanation says it in words' stead: ``portal_origin`` (reply | forward | compose) and
``portal_route`` (internal | external); :mod:`portal.admin.why`
turns them into a sentence.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Set

from core.accounts.domains import tenant_domains
from core.addresses import domain_of
from core.models import MessageRecipient
from gateway.pipeline.context import Context
from gateway.pipeline.decide import Verdict
from gateway.pipeline.decide import decide as policy_decide

PORTAL_ORIGINS = ("reply", "forward", "compose")
TRIGGER = "written in the secure portal"
_STANDS = ("hold", "reject")


def is_internal(address: str, domains: Set[str]) -> bool:
    """An address of one of the tenant's domains or of a subdomain (as the policy says)."""
    d = domain_of(address)
    return d in domains or any(d.endswith("." + x) for x in domains)


def _internal(v: Verdict, origin: str, tenant_name: str) -> Verdict:
    if v.action in _STANDS:
        return dataclasses.replace(v, explanation={**v.explanation, "portal_origin": origin})
    explanation = {
        **v.explanation,
        "portal_origin": origin,
        "portal_route": "internal",
        "upgraded_from": v.action,
        "disposition": "clear",
    }
    reason = f"{origin} {TRIGGER}: delivered by mail to an address of {tenant_name}"
    return Verdict("clear", "pass", "", v.rule, reason, explanation)


def _external(v: Verdict, origin: str, tenant_name: str) -> Verdict:
    extra = {"portal_origin": origin}
    if v.action not in _STANDS:
        extra["portal_route"] = "external"
    return dataclasses.replace(v, explanation={**v.explanation, **extra})


async def portal_verdicts(
    ctx: Context, rest: list[MessageRecipient], released: Set[str]
) -> dict[str, Verdict]:
    """One verdict per recipient of a message written in the portal."""
    origin = ctx.message.origin
    listed = await ctx.cache.get(
        ("domains", ctx.tenant.id), lambda: tenant_domains(ctx.session, ctx.tenant.id)
    )
    domains = {x.lower().rstrip(".") for x in listed}
    inside = [r.rcpt for r in rest if is_internal(r.rcpt, domains)]
    outside = [r.rcpt for r in rest if not is_internal(r.rcpt, domains)]
    verdicts: dict[str, Verdict] = {}
    for group, trigger, shape in ((inside, None, _internal), (outside, TRIGGER, _external)):
        if not group:
            continue
        decided = await policy_decide(
            ctx.services,
            ctx.session,
            ctx.tenant,
            raw=ctx.raw,
            mail_from=ctx.message.mail_from,
            recipients=group,
            trigger_reason=trigger,
            released=frozenset(r for r in released if r in group),
            cache=ctx.cache,
            skeleton=ctx.large.skeleton if ctx.large is not None else None,
            parsed=ctx.msg if ctx.large is None else None,  # parsed once, by the runner
        )
        name = ctx.tenant.display_name or ctx.tenant.name
        verdicts.update({rcpt: shape(v, origin, name) for rcpt, v in decided.items()})
    return verdicts
