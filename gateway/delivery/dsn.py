"""Delivery status notifications (RFC 3464): ``multipart/report`` with a readable part,
``message/delivery-status``, and the original's headers (never its body, so a DSN never
carries content the sender did not already have in the clear).

``action="failed"`` is a bounce; ``action="delayed"`` the warning that mail is still
waiting (``Will-Retry-Until`` says until when), sent once per recipient."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from email.message import EmailMessage, Message
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, formatdate, make_msgid

from sqlalchemy.ext.asyncio import AsyncSession

from core import outbox
from core.services import Services
from gateway.headers import split_header_block, strip_fields


@dataclasses.dataclass(frozen=True)
class Failure:
    rcpt: str
    status: str  # enhanced status code, e.g. 5.1.1
    diagnostic: str  # the reply as the remote server gave it


def status_of(reply: str, default: str = "5.0.0") -> str:
    parts = reply.split()
    if len(parts) > 1 and parts[1][:1] in "45" and parts[1].count(".") == 2:
        return parts[1]
    return default


def build_dsn(
    *,
    reporting_host: str,
    postmaster: str,
    to_addr: str,
    original: bytes,
    failures: list[Failure],
    arrival: float,
    action: str = "failed",
    retry_until: float | None = None,
) -> bytes:
    """A complete DSN message to ``to_addr`` (sent with the null sender)."""
    if action not in ("failed", "delayed"):
        raise ValueError(f"unknown DSN action {action!r}")
    delayed = action == "delayed"
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["From"] = f"Mail Delivery System <{postmaster}>"
    msg["To"] = to_addr
    msg["Subject"] = (
        "Delayed Mail (still being retried)" if delayed else "Undelivered Mail Returned to Sender"
    )
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = make_msgid(domain=reporting_host)
    msg["Auto-Submitted"] = "auto-replied"
    if delayed:
        until = _date(retry_until) if retry_until else "its lifetime ends"
        summary = (
            "Your message has not been delivered yet to one or more recipients.\n"
            f"The mail system will keep trying until {until}; you need not send it again."
        )
    else:
        summary = "Your message could not be delivered to one or more recipients."
    lines = [f"This is the mail system at {reporting_host}.", "", summary, ""]
    lines += [f"<{f.rcpt}>: {f.diagnostic}" for f in failures]
    msg.set_content("\n".join(lines) + "\n")
    msg.make_mixed()
    msg.replace_header("Content-Type", 'multipart/report; report-type="delivery-status"')

    # message/delivery-status is a list of header blocks: one per message, one per recipient
    per_message = Message(policy=SMTP_POLICY)
    per_message["Reporting-MTA"] = f"dns; {reporting_host}"
    per_message["Arrival-Date"] = _date(arrival)
    blocks = [per_message]
    for f in failures:
        block = Message(policy=SMTP_POLICY)
        block["Final-Recipient"] = f"rfc822; {f.rcpt}"
        block["Action"] = action
        block["Status"] = f.status
        block["Diagnostic-Code"] = f"smtp; {' '.join(f.diagnostic.split())}"
        if delayed and retry_until:
            block["Will-Retry-Until"] = _date(retry_until)
        blocks.append(block)
    status = EmailMessage(policy=SMTP_POLICY)
    status["Content-Type"] = "message/delivery-status"
    status.set_payload(blocks)
    msg.attach(status)

    headers = EmailMessage(policy=SMTP_POLICY)
    # internal headers (connector token, per-message options) never leave, not even here
    block, _ = split_header_block(strip_fields(original))
    headers.set_payload(block.decode("utf-8", "replace"))
    headers["Content-Type"] = "text/rfc822-headers"
    headers["Content-Transfer-Encoding"] = "8bit"
    msg.attach(headers)
    return msg.as_bytes()


def _date(at: float) -> str:
    return format_datetime(datetime.fromtimestamp(at, UTC))


async def queue_dsn(
    services: Services,
    session: AsyncSession,
    *,
    tenant_id: str,
    to_addr: str,
    original: bytes,
    failures: list[Failure],
    arrival: float,
    message_id: str | None,
    action: str = "failed",
    retry_until: float | None = None,
) -> None:
    """Build the DSN and post it to the outbox from the null sender (the caller
    commits). The caller makes sure ``to_addr`` is not the null sender: no bounce to a
    bounce."""
    settings = services.settings
    body = build_dsn(
        reporting_host=settings.smtp_hostname,
        postmaster=f"MAILER-DAEMON@{settings.smtp_hostname}",
        to_addr=to_addr,
        original=original,
        failures=failures,
        arrival=arrival,
        action=action,
        retry_until=retry_until,
    )
    await outbox.post(
        session,
        services.vault,
        kind="dsn",
        tenant_id=tenant_id,
        mail_from="",
        recipients=[to_addr],
        raw=body,
        lifetime=settings.queue_lifetime,
        message_id=message_id,
    )
