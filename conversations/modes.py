"""Who may do what with a sealed message after it arrived: whether its recipient may reply,
reply to all or forward it (the message's own ``X-Sealmail-Reply`` / ``-Forward`` option, else
the tenant's default), to whom a reply goes, and where a forward may go.

One place for these rules: the conversation view shows its buttons by them, the reply and
forward pages refuse by them.
"""

from __future__ import annotations

from collections.abc import Iterable
from email.utils import getaddresses
from typing import Protocol

from core.addresses import normalize, problem

from .options import FORWARD_MODES, REPLY_MODES


class _HasReplyModes(Protocol):
    reply_mode: str
    forward_mode: str


class _HasDefaults(Protocol):
    reply_default: str
    forward_default: str


def reply_mode(msg: _HasReplyModes, tenant: _HasDefaults | None) -> str:
    """``none``, ``sender`` or ``all``: the message's own mode, else the tenant's default;
    an unknown value (never written by us) counts as the strictest, ``none``."""
    mode = (msg.reply_mode or "").strip().lower()
    if not mode:
        mode = ((tenant.reply_default if tenant is not None else "") or "all").strip().lower()
    return mode if mode in REPLY_MODES else "none"


def forward_mode(msg: _HasReplyModes, tenant: _HasDefaults | None) -> str:
    """``no``, ``internal`` or ``yes``, resolved like :func:`reply_mode` (unknown: ``no``)."""
    mode = (msg.forward_mode or "").strip().lower()
    if not mode:
        mode = ((tenant.forward_default if tenant is not None else "") or "yes").strip().lower()
    return mode if mode in FORWARD_MODES else "no"


def may_reply(mode: str, reply_all: bool = False) -> bool:
    """Whether a reply (or, with ``reply_all``, a reply to everyone) is allowed in ``mode``."""
    if reply_all:
        return mode == "all"
    return mode in ("sender", "all")


def parse_shown(values: Iterable[str]) -> list[tuple[str, str]]:
    """``(name, address)`` of each valid address in header values as the portal shows them
    (``"Alice Smith <alice@acme.example>"``, ``"bob@x.example"``), in order, without repeats."""
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for name, addr in getaddresses([v for v in values if v]):
        address = normalize(addr)
        if problem(address) is not None or address in seen:
            continue
        seen.add(address)
        out.append((name.strip(), address))
    return out


def reply_recipients(
    author: str,
    sender: str,
    to: Iterable[str],
    cc: Iterable[str],
    *,
    reply_all: bool,
    mail_from: str = "",
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Who a reply goes to, as ``(to, cc)`` lists of ``(name, address)``.

    A reply goes to the parent's sender (its From address; the envelope sender when From
    holds no address); when the author answers their own message, to its To recipients.
    Reply-all adds the parent's other To and Cc recipients as Cc. Never the author himself,
    never anyone twice; Bcc'd addresses are not known here, so never them either."""
    me = normalize(author)
    senders = parse_shown([sender]) or parse_shown([mail_from])
    to_list = parse_shown(list(to))
    cc_list = parse_shown(list(cc))
    if senders and senders[0][1] == me:  # answering one's own message: its recipients
        primary = [p for p in to_list if p[1] != me]
    else:
        primary = senders[:1]
    if not reply_all:
        return primary, []
    taken = {me, *(a for _n, a in primary)}
    others: list[tuple[str, str]] = []
    for name, address in [*to_list, *cc_list]:
        if address not in taken:
            taken.add(address)
            others.append((name, address))
    return primary, others


def domain_of(address: str) -> str:
    return normalize(address).rpartition("@")[2]


def forward_allowed(address: str, mode: str, tenant_domains: Iterable[str]) -> bool:
    """Whether a message in forward ``mode`` may be forwarded to ``address``: never with
    ``no``; with ``internal`` only to an address of one of the tenant's domains (exactly,
    not a subdomain); with ``yes`` anywhere."""
    if mode == "yes":
        return True
    if mode != "internal":
        return False
    return domain_of(address) in {d.strip().lower() for d in tenant_domains}
