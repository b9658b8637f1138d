"""The verdict for each pending recipient of one pass: a journal report, the loop stamp,
a reroute to the portal, or the tenant's policy (:mod:`gateway.pipeline.decide`; for a
message written in the portal through :mod:`gateway.pipeline.portal_origin`)."""

from __future__ import annotations

from core.models import MessageRecipient
from gateway.pipeline.context import Context
from gateway.pipeline.conversation import THREAD_TRIGGER, answers_sealed
from gateway.pipeline.decide import Verdict
from gateway.pipeline.decide import decide as policy_decide
from gateway.pipeline.journal import DISPOSITION_JOURNAL, is_journal_report
from gateway.pipeline.portal_origin import PORTAL_ORIGINS, portal_verdicts
from gateway.pipeline.triggers import encrypt_reason
from gateway.stamp import DISPOSITION_LOOP

REROUTED = Verdict(
    disposition="portal",
    action="encrypt",
    method="portal",
    rule="",
    reason="verified TLS was required and the next hop could not give it",
    explanation={"reroute": "require_tls"},
)
LOOPED = Verdict(
    disposition="clear",
    action="pass",
    method="",
    rule="",
    reason="valid loop stamp: relayed as it is",
    explanation={"loop_stamp": True},
)


def _journaled(why: str) -> Verdict:
    return Verdict(
        disposition=DISPOSITION_JOURNAL,
        action="journal",
        method="",
        rule="",
        reason="Exchange journal report: archived, never delivered onwards",
        explanation={"journal": why},
    )


async def verdicts_for(ctx: Context, pending: list[MessageRecipient]) -> dict[str, Verdict]:
    """One verdict per pending recipient: a journal report (before anything else: it is
    never delivered), the loop stamp, a reroute to the portal, or the tenant's policy
    (with the built-in triggers and a release from quarantine)."""
    journal = is_journal_report(ctx.raw, ctx.tenant, [r.rcpt for r in pending])
    if journal:
        return {r.rcpt: _journaled(journal) for r in pending}
    if ctx.message.disposition == DISPOSITION_LOOP:
        return {r.rcpt: LOOPED for r in pending}
    verdicts = {r.rcpt: REROUTED for r in pending if r.override == "portal"}
    rest = [r for r in pending if r.rcpt not in verdicts]
    if rest and ctx.message.origin in PORTAL_ORIGINS:
        released = frozenset(r.rcpt for r in rest if r.override == "released")
        verdicts.update(await portal_verdicts(ctx, rest, released))
    elif rest:
        trigger = encrypt_reason(ctx.msg, ctx.tenant, ctx.services.settings.trigger_keywords)
        if trigger is None and await answers_sealed(ctx):
            trigger = THREAD_TRIGGER
        verdicts.update(
            await policy_decide(
                ctx.services,
                ctx.session,
                ctx.tenant,
                raw=ctx.raw,
                mail_from=ctx.message.mail_from,
                recipients=[r.rcpt for r in rest],
                trigger_reason=trigger,
                released=frozenset(r.rcpt for r in rest if r.override == "released"),
                cache=ctx.cache,
                skeleton=ctx.large.skeleton if ctx.large is not None else None,
                parsed=ctx.msg if ctx.large is None else None,  # parsed once, by the runner
            )
        )
    return verdicts
