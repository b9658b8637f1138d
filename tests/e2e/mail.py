"""Building and sending test messages the way a sender's mail server would."""

from __future__ import annotations

import re
import smtplib
import ssl
from email import message_from_bytes, policy
from email.message import EmailMessage


def make_message(
    subject: str,
    body: str,
    sender: str = "alice@acme.example",
    to: str = "bob@recipient.test",
    attachments: list[tuple[str, str, bytes]] | None = None,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Alice Sender <{sender}>"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(body)
    for filename, ctype, data in attachments or []:
        maintype, _, subtype = ctype.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg


def send(
    port: int,
    msg: EmailMessage,
    username: str,
    password: str,
    mail_from: str = "alice@acme.example",
    rcpt: list[str] | None = None,
) -> str:
    """Send over STARTTLS + AUTH; return the server's final reply text."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
        smtp.starttls(context=ctx)
        smtp.login(username, password)
        for step, args in (("mail", (mail_from,)),) + tuple(
            ("rcpt", (r,)) for r in (rcpt or [str(msg["To"])])
        ):
            code, text = getattr(smtp, step)(*args)
            if code != 250:
                raise smtplib.SMTPResponseException(code, text)
        code, text = smtp.data(msg.as_bytes())
        if code != 250:
            raise smtplib.SMTPResponseException(code, text)
        return text.decode()


def parse(data: bytes) -> EmailMessage:
    return message_from_bytes(data, policy=policy.default)  # type: ignore[return-value]


def text_of(msg: EmailMessage) -> str:
    parts = []
    for part in msg.walk():
        if part.get_content_maintype() == "text":
            parts.append(part.get_content())
    return "\n".join(parts)


def find_link(data: bytes, base_url: str) -> str:
    found = re.findall(re.escape(base_url) + r"/m/[A-Za-z0-9_\-]+", text_of(parse(data)))
    assert found, "no portal link in the notification"
    return found[0]


def find_code(data: bytes) -> str:
    found = re.findall(r"\b(\d{6,10})\b", text_of(parse(data)))
    assert found, "no one-time code in the email"
    return found[0]
