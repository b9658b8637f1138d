"""DSNs per RFC 3464: a bounce (``failed``) and a delay warning (``delayed``), parsed back."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import Message

import pytest

from gateway.delivery.dsn import Failure, build_dsn, status_of

ORIGINAL = (
    b"From: Alice <alice@acme.example>\r\nTo: bob@x.example\r\nSubject: Numbers\r\n"
    b"Message-ID: <m1@acme.example>\r\n\r\nThe secret body.\r\n"
)


def _build(action: str, retry_until: float | None = None) -> Message:
    raw = build_dsn(
        reporting_host="gw.example",
        postmaster="MAILER-DAEMON@gw.example",
        to_addr="alice@acme.example",
        original=ORIGINAL,
        failures=[Failure("bob@x.example", "4.2.2", "451 4.2.2 mailbox busy")],
        arrival=1_700_000_000.0,
        action=action,
        retry_until=retry_until,
    )
    assert b"The secret body." not in raw  # headers only
    return message_from_bytes(raw, policy=policy.SMTP)


def _status_blocks(msg: Message) -> list[Message]:
    [part] = [p for p in msg.walk() if p.get_content_type() == "message/delivery-status"]
    return list(part.get_payload())


def test_delayed_dsn_shape() -> None:
    msg = _build("delayed", retry_until=1_700_432_000.0)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    assert msg["To"] == "alice@acme.example" and msg["Auto-Submitted"] == "auto-replied"
    assert "Delayed" in msg["Subject"]
    per_message, per_rcpt = _status_blocks(msg)
    assert per_message["Reporting-MTA"] == "dns; gw.example"
    assert per_rcpt["Action"] == "delayed" and per_rcpt["Status"] == "4.2.2"
    assert per_rcpt["Final-Recipient"] == "rfc822; bob@x.example"
    assert "2023" in per_rcpt["Will-Retry-Until"]
    text = msg.get_payload(0).get_payload(decode=True).decode()
    assert "keep trying" in text and "bob@x.example" in text
    [headers] = [p for p in msg.walk() if p.get_content_type() == "text/rfc822-headers"]
    assert "Subject: Numbers" in headers.get_payload()


def test_failed_dsn_is_unchanged_and_unknown_action_refused() -> None:
    msg = _build("failed", retry_until=1_700_432_000.0)
    assert msg["Subject"] == "Undelivered Mail Returned to Sender"
    _, per_rcpt = _status_blocks(msg)
    assert per_rcpt["Action"] == "failed" and per_rcpt["Will-Retry-Until"] is None
    with pytest.raises(ValueError):
        _build("relayed")


def test_status_of() -> None:
    assert status_of("451 4.2.2 mailbox busy", "4.0.0") == "4.2.2"
    assert status_of("451 try later", "4.0.0") == "4.0.0"
    assert status_of("550 5.1.1 unknown") == "5.1.1"
