"""The readable pages that say why a reply or forward cannot be sent: the sender turned it
off (403), the files are too large (413), too many were sent in the last hour (429)."""

from __future__ import annotations

from starlette.responses import Response

from core.mime_text import clean
from portal.pages import branding_of
from portal.reader.message import human_size
from portal.reader.writing import Original
from portal.state import PortalState


def _page(
    st: PortalState,
    status: int,
    title: str,
    text: str,
    original: Original | None = None,
    *,
    headers: dict[str, str] | None = None,
    alternative: tuple[str, str] | None = None,
) -> Response:
    ctx: dict[str, object] = {"status": status, "title": title, "text": text}
    if original is not None:
        ctx.update(branding_of(original.tenant))
        ctx.update(
            signed_in=True,
            csrf_token=original.current.csrf_token,
            email=original.current.email,
            message_id=original.msg.id,
        )
    if alternative is not None:
        ctx["alternative_url"], ctx["alternative_label"] = alternative
    return st.pages.render("reader/refused.html", ctx, status=status, headers=headers)


def _sender(original: Original) -> str:
    pm = original.pm
    return clean(pm.sender_name or pm.sender) or original.msg.mail_from


def reply_refused(st: PortalState, original: Original, mode: str, reply_all: bool) -> Response:
    who = _sender(original)
    if reply_all and mode == "sender":
        return _page(
            st,
            403,
            "Reply all is turned off for this message",
            f"{who} chose that replies to this message go to them only. You can still "
            "reply to them securely.",
            original,
            alternative=(f"/messages/{original.msg.id}/reply", f"Reply to {who}"),
        )
    return _page(
        st,
        403,
        "Replies are turned off for this message",
        f"{who} turned replies off for this message, so it cannot be answered here. If you "
        "need to answer, contact them the way you usually do, without repeating anything "
        "confidential from this message.",
        original,
    )


def forward_refused(st: PortalState, original: Original) -> Response:
    who = _sender(original)
    return _page(
        st,
        403,
        "Forwarding is turned off for this message",
        f"{who} turned forwarding off for this message, so it can only be read here by the "
        "people it was sent to.",
        original,
    )


def too_large(st: PortalState) -> Response:
    limit = human_size(st.settings.smtp_max_message_size * 3 // 4)
    return _page(
        st,
        413,
        "Your files are too large to send",
        f"A secure message can carry up to {limit} of attachments. Go back, remove some "
        "files and send it again; nothing was sent.",
    )


def too_many(st: PortalState, original: Original) -> Response:
    return _page(
        st,
        429,
        "You have sent many messages in the last hour",
        "For your protection, replies and forwards are paused for a while. Please try "
        "again later; nothing was sent this time.",
        original,
        headers={"Retry-After": "3600"},
    )
