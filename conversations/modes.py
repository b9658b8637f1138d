"""Who may do what with a sealed message: its reply and forward modes, each the message's
own option (``X-Sealmail-Reply`` / ``-Forward``) or, when it has none, the tenant's default.

One place for the resolution, so the conversation view's buttons and the reply / forward
handlers can never disagree."""

from __future__ import annotations

from core.models import Message, Tenant

REPLY_MODES = ("none", "sender", "all")
FORWARD_MODES = ("no", "internal", "yes")


def reply_mode(msg: Message, tenant: Tenant) -> str:
    """``none`` (no reply), ``sender`` (Reply to the original sender only) or ``all``
    (Reply and Reply all). An unknown stored value counts as ``none`` (fail closed)."""
    mode = (msg.reply_mode or tenant.reply_default or "").strip().lower()
    return mode if mode in REPLY_MODES else "none"


def forward_mode(msg: Message, tenant: Tenant) -> str:
    """``no``, ``internal`` (only to addresses of the tenant's domains) or ``yes``. An unknown
    stored value counts as ``no`` (fail closed)."""
    mode = (msg.forward_mode or tenant.forward_default or "").strip().lower()
    return mode if mode in FORWARD_MODES else "no"
