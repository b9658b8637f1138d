"""Handler ``guard_message``: what opening a sealed message needs beyond signing in
(issue 16): the sender's passphrase (its ``X-Sealmail-Passphrase-Ref`` bound to the
message) and step-up when the tenant asks for it (the verdicts say why)."""

from __future__ import annotations

import logging

from conversations import guards
from core.models import MessageRecipient
from gateway.pipeline.context import Context

log = logging.getLogger("sealmail.gateway.pipeline")

KEEPS_PASSPHRASE = ("pdf", "hold")  # a PDF may still be encrypted with it


async def guard_message(ctx: Context, rcpts: list[MessageRecipient]) -> None:
    reasons = [
        v.step_up for r in rcpts if (v := ctx.verdicts.get(r.rcpt)) is not None and v.step_up
    ]
    ref = ctx.options.passphrase_ref
    if not reasons and not ref:
        return
    got = await guards.protect(
        ctx.session,
        ctx.tenant.id,
        ctx.message.id,
        ctx.message.mail_from,
        passphrase_ref=ref,
        step_up_reason=reasons[0] if reasons else "",
    )
    if got is None:
        return
    if got.warning:
        log.warning("message %s: %s; it needs a passkey instead", ctx.message.id, got.warning)
    if not any(v.disposition in KEEPS_PASSPHRASE for v in ctx.verdicts.values()):
        # no PDF to encrypt with it: only its hash stays
        await guards.forget_sealed(ctx.session, ctx.services.vault, got.guard)
