"""Handler ``notify_pdf`` (disposition ``pdf``): after ``seal_to_portal`` and
``grant_access``, the recipient's branded notice with the message as an AES-256 encrypted
PDF attached (:mod:`branding.pdf_mail`), or, while they have no PDF password yet, the notice
that leads them to the portal to read it and choose one. Outbox kind ``pdf``; a mail that
carries the PDF is recorded as event ``pdf_sent``."""

from __future__ import annotations

from conversations import events, guards
from conversations.pdf_passwords import pdf_password_for
from core import outbox
from core.models import MessageRecipient
from core.portal_links import portal_url_for
from gateway.pipeline.context import Context


async def notify_pdf(ctx: Context, rcpts: list[MessageRecipient]) -> None:
    """One mail per recipient, sealed into the outbox in the pass's transaction."""
    # Imported here: branding is layer 1 and renders templates; nothing at import time.
    from branding import references
    from branding.brands import resolve
    from branding.pdf_mail import pdf_notice, read_message

    settings = ctx.services.settings
    vault = ctx.services.vault
    assert ctx.portal_meta_id, "seal_to_portal runs first"
    pm = await read_message(ctx.session, vault, ctx.tenant.id, ctx.portal_meta_id)
    from_addr = ctx.tenant.notification_from or settings.sender_address
    base = portal_url_for(settings.portal_base_url, ctx.tenant.portal_host)
    for r in rcpts:
        link, expires = ctx.links[r.rcpt]
        ref = await references.issue(ctx.session, ctx.tenant.id, ctx.message.id, r.rcpt)
        verdict = ctx.verdicts.get(r.rcpt)
        brand = str((verdict.explanation.get("brand", "") if verdict is not None else "") or "")
        look = await ctx.cache.get(
            ("brand", ctx.tenant.id, brand),
            lambda brand=brand: resolve(ctx.session, ctx.tenant, brand),
        )
        password = await pdf_password_for(ctx.session, vault, ctx.tenant.id, ctx.message.id, r.rcpt)
        raw, state = await pdf_notice(
            ctx.session,
            vault,
            ctx.tenant,
            pm,
            password=password,
            from_addr=from_addr,
            recipient=r.rcpt,
            link=link,
            reply_link=link,
            expires_at=expires,
            portal_base_url=base,
            reference=ref,
            look=look,
        )
        del password
        await outbox.post(
            ctx.session,
            vault,
            kind="pdf",
            tenant_id=ctx.tenant.id,
            mail_from=ctx.message.mail_from,
            recipients=[r.rcpt],
            raw=raw,
            lifetime=settings.queue_lifetime,
            message_id=ctx.message.id,
        )
        if state == "attached":
            events.record(
                ctx.session, ctx.tenant.id, ctx.message.id, events.PDF_SENT, r.rcpt,
                "pipeline", size=len(raw),
            )  # fmt: skip
    if not any(v.disposition == "hold" for v in ctx.verdicts.values()):
        # the PDFs are made: only the passphrase's hash stays (conversations.guards)
        guard = await guards.guard_of(ctx.session, ctx.tenant.id, ctx.message.id)
        if guard is not None:
            await guards.forget_sealed(ctx.session, vault, guard)
