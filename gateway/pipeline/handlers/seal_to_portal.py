"""Handler ``seal_to_portal``: the message's parts sealed for the portal, once per message."""

from __future__ import annotations

from sqlalchemy.orm.attributes import set_committed_value

from core.models import MessageRecipient
from gateway.pipeline.context import Context
from gateway.pipeline.original import seal_parts_large
from gateway.pipeline.portal_seal import seal_parts


async def seal_to_portal(ctx: Context, rcpts: list[MessageRecipient]) -> None:
    """Seal the parts and their list (the meta object) unless an earlier pass did."""
    if ctx.message.meta_object_id:  # an earlier pass sealed it for other recipients
        ctx.portal_meta_id = ctx.message.meta_object_id
        return
    if ctx.large is not None:  # sealed from the stream, part by part
        meta = await seal_parts_large(
            ctx.session,
            ctx.services.vault,
            ctx.tenant.id,
            ctx.large,
            ctx.subject,
            ctx.message.mail_from,
        )
    else:
        meta = await seal_parts(
            ctx.session,
            ctx.services.vault,
            ctx.tenant.id,
            ctx.msg,
            ctx.subject,
            ctx.message.mail_from,
        )
    obj = await ctx.services.vault.seal(ctx.session, ctx.tenant.id, meta.to_json(), kind="meta")
    # kept on the object without dirtying it: the pass's final UPDATE of the message
    # writes it (one statement fewer per message)
    set_committed_value(ctx.message, "meta_object_id", obj.id)
    ctx.portal_meta_id = obj.id
    # the evidence log's "sealed", written after the decisions (gateway.pipeline.outcome)
    ctx.sealed_parts = len(meta.attachments) + bool(meta.text_object_id) + bool(meta.html_object_id)
