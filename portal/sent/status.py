"""The status of a sent message per recipient, readable: how it was protected, whether it was
delivered, held or bounced, and for a portal copy when it was notified, opened, downloaded,
replied to, revoked (by whom) and when it expires (shared by the list and the detail page of
``/sent``; :meth:`RecipientStatus.summary` and :meth:`RecipientStatus.lines` say it in
sentences)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from branding.notifications import format_time
from conversations import events
from conversations.models import MessageEvent
from core import quarantine
from core.models import MessageRecipient, OutboxItem, OutboxRecipient, PortalAccess, now
from core.policy.models import HeldMessage

_NOT_DELIVERY = ("dsn", "code", "sender")  # outbox items about a message, not its copies
METHODS = {
    "portal": "sealed to the portal",
    "pgp": "OpenPGP",
    "smime": "S/MIME",
    "pdf": "encrypted PDF",
    "tls": "TLS only",
    "clear": "clear",
    "hold": "held",
    "reject": "rejected",
    "bounced": "bounced",
    "journal": "journal",
}

DELIVERY = {
    "queued": "waiting to be sent",
    "deferred": "retrying",
    "sent": "delivered",
    "bounced": "bounced",
    "held": "held",
}

HELD_STATES = {
    "held": "waiting for review",
    "released": "released by compliance",
    "rejected": "rejected by compliance (you were told)",
}


@dataclasses.dataclass(frozen=True)
class RecipientStatus:
    rcpt: str
    disposition: str  # the raw value, for CSS and tests
    method: str  # readable
    delivery: str
    detail: str  # the last reply of a failed attempt, or the reason
    opened_at: float | None
    portal: bool
    notified_at: float | None = None
    downloaded_at: float | None = None
    replied_at: float | None = None
    revoked: bool = False
    revoked_at: float | None = None
    revoked_by: str = ""
    expires_at: float | None = None

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and not self.revoked and self.expires_at <= now()

    @property
    def live(self) -> bool:
        """A portal copy the recipient can still open (what revoke and resend act on)."""
        return self.portal and not self.revoked and not self.expired

    def revoked_words(self) -> str:
        if not self.revoked:
            return ""
        by = f" by {self.revoked_by}" if self.revoked_by else ""
        if self.revoked_at is None:
            return f"Revoked{by}"
        day, _, clock = format_time(self.revoked_at).partition(", ")
        return f"Revoked{by} at {clock}, {day}"

    def summary(self) -> str:
        """One short clause for the list: how it went and where it stands."""
        parts = [self.method]
        delivery = "" if self.delivery == "-" else self.delivery
        delivery += f" ({self.detail})" if self.detail else ""
        if self.portal:
            if self.revoked:
                parts.append(self.revoked_words()[0].lower() + self.revoked_words()[1:])
            elif self.replied_at is not None:
                parts.append(f"replied {format_time(self.replied_at)}")
            elif self.opened_at is not None:
                parts.append(f"opened {format_time(self.opened_at)}")
            else:
                parts += [delivery, "not yet opened"]
            if self.expired and self.expires_at is not None:
                parts.append(f"expired {format_time(self.expires_at)}")
        else:
            parts.append(delivery)
        return ", ".join(p for p in parts if p)

    def lines(self) -> list[str]:
        """The detail page's sentences, in the order things happen."""
        shown = self.delivery not in ("", "-")
        out = [f"Sent as {self.method}: {self.delivery}." if shown else f"Sent as {self.method}."]
        if self.detail:
            out.append(f"The last answer was: {self.detail}")
        if not self.portal:
            return out
        if self.notified_at is not None:
            out.append(f"Notified {format_time(self.notified_at)}.")
        if self.opened_at is not None:
            out.append(f"Opened {format_time(self.opened_at)}.")
        else:
            out.append("Not opened yet.")
        if self.downloaded_at is not None:
            out.append(f"Downloaded {format_time(self.downloaded_at)}.")
        if self.replied_at is not None:
            out.append(f"Replied {format_time(self.replied_at)}.")
        if self.revoked:
            out.append(self.revoked_words() + ".")
        elif self.expires_at is not None:
            verb = "expired" if self.expired else "expires"
            out.append(f"Access {verb} {format_time(self.expires_at)}.")
        return out


def _delivery_label(states: Sequence[OutboxRecipient], disposition: str) -> tuple[str, str]:
    if not states:
        return "", ""
    # the worst state wins: one bounced copy is a bounce, one waiting copy is waiting
    for state in ("bounced", "deferred", "queued", "held", "sent"):
        for row in states:
            if row.state == state:
                label = DELIVERY.get(state, state)
                if state == "sent" and disposition in ("portal", "pdf"):
                    label = "notification delivered"
                if state == "deferred":
                    label = f"retrying (attempt {row.attempts})"
                return label, row.last_reply if state in ("bounced", "deferred") else ""
    return states[0].state, ""


def _fallback_delivery(r: MessageRecipient, held: Sequence[HeldMessage]) -> str:
    if r.state == "pending":
        return "being processed"
    if r.disposition == "hold":
        for h in held:
            if r.rcpt.lower() in (x.lower() for x in quarantine.recipients_of(h)):
                return HELD_STATES.get(h.state, h.state)
        return "waiting for review"
    if r.disposition == "reject":
        return "not sent (you were told)"
    if r.disposition == "bounced":
        return "bounced"
    return "-"


async def statuses(
    s: AsyncSession, tenant_id: str, message_ids: Iterable[str]
) -> dict[str, list[RecipientStatus]]:
    """Each message's recipients: how the policy sent it, where delivery stands, and whether
    a portal recipient opened it. Three queries for a whole page of messages."""
    ids = list(message_ids)
    out: dict[str, list[RecipientStatus]] = {m: [] for m in ids}
    if not ids:
        return out
    rcpts = (
        (
            await s.execute(
                select(MessageRecipient)
                .where(MessageRecipient.message_id.in_(ids))
                .order_by(MessageRecipient.id)
            )
        )
        .scalars()
        .all()
    )
    copies: dict[tuple[str, str], list[OutboxRecipient]] = {}
    rows = await s.execute(
        select(OutboxItem.message_id, OutboxRecipient)
        .join(OutboxRecipient, OutboxRecipient.outbox_id == OutboxItem.id)
        .where(
            OutboxItem.message_id.in_(ids),
            OutboxItem.tenant_id == tenant_id,
            OutboxItem.kind.not_in(_NOT_DELIVERY),
        )
    )
    for message_id, row in rows.all():
        copies.setdefault((str(message_id), row.rcpt.lower()), []).append(row)
    opened: dict[tuple[str, str], float | None] = {}
    access_of: dict[tuple[str, str], PortalAccess] = {}
    for access in (
        (
            await s.execute(
                select(PortalAccess).where(
                    PortalAccess.message_id.in_(ids),
                    PortalAccess.tenant_id == tenant_id,
                    PortalAccess.kind != "author",
                )
            )
        )
        .scalars()
        .all()
    ):
        key = (access.message_id, access.recipient.lower())
        first = [t for t in (opened.get(key), access.first_opened_at) if t is not None]
        opened[key] = min(first) if first else None
        access_of[key] = access
    firsts = await _first_events(s, tenant_id, ids)
    held_rows = (
        (
            await s.execute(
                select(HeldMessage).where(
                    HeldMessage.message_id.in_(ids), HeldMessage.tenant_id == tenant_id
                )
            )
        )
        .scalars()
        .all()
    )
    known = {(r.message_id, r.rcpt.lower()) for r in rcpts}
    # a portal access whose recipient row is missing (written by another path) still shows
    rows = list(rcpts) + [
        MessageRecipient(message_id=m, rcpt=a.recipient, disposition="portal", state="done")
        for (m, rcpt), a in sorted(access_of.items())
        if (m, rcpt) not in known
    ]
    for r in rows:
        key = (r.message_id, r.rcpt.lower())
        label, detail = _delivery_label(copies.get(key, []), r.disposition)
        held = [h for h in held_rows if h.message_id == r.message_id]
        a = access_of.get(key)
        sent_at = [c.updated_at for c in copies.get(key, []) if c.state == "sent"]
        out[r.message_id].append(
            RecipientStatus(
                rcpt=r.rcpt,
                disposition=r.disposition,
                method=METHODS.get(r.disposition, r.disposition or "not decided yet"),
                delivery=label or _fallback_delivery(r, held),
                detail=detail or (r.reason if r.disposition in ("reject", "bounced") else ""),
                opened_at=opened.get(key) or firsts.get((*key, events.OPENED)),
                portal=key in opened,
                notified_at=firsts.get((*key, events.NOTIFIED))
                or (min(sent_at) if sent_at else None),
                downloaded_at=(a.first_downloaded_at if a else None)
                or firsts.get((*key, events.DOWNLOADED)),
                replied_at=(a.replied_at if a else None) or firsts.get((*key, events.REPLIED)),
                revoked=bool(a and a.revoked),
                revoked_at=a.revoked_at if a else None,
                revoked_by=a.revoked_by if a else "",
                expires_at=a.expires_at if a else None,
            )
        )
    return out


_FIRSTS = (events.NOTIFIED, events.OPENED, events.DOWNLOADED, events.REPLIED)


async def _first_events(
    s: AsyncSession, tenant_id: str, ids: list[str]
) -> dict[tuple[str, str, str], float]:
    """(message, recipient, kind) -> the first time it happened, of the events a status
    shows, where the access row does not say it."""
    rows = await s.execute(
        select(MessageEvent.message_id, MessageEvent.recipient, MessageEvent.kind, MessageEvent.at)
        .where(
            MessageEvent.tenant_id == tenant_id,
            MessageEvent.message_id.in_(ids),
            MessageEvent.kind.in_(_FIRSTS),
        )
        .order_by(MessageEvent.at)
    )
    out: dict[tuple[str, str, str], float] = {}
    for message_id, recipient, kind, at in rows.all():
        out.setdefault((message_id, recipient.lower(), kind), at)
    return out
