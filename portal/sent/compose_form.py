"""The ``/compose`` form: what a sender typed, checked field by field, and the per-message
option headers (SPEC §3) their choices become.

Kept apart from the handler (:mod:`portal.sent.compose`) so the rules a person meets (which
addresses are accepted, how many, which periods) read in one place. Nothing here touches the
database or the request; errors are sentences keyed by the field they belong to, shown next
to it and summarised at the top of the page.
"""

from __future__ import annotations

import dataclasses
import re
import time

from starlette.datastructures import FormData

from conversations import guards, options
from core.addresses import InvalidAddress, parse_address
from core.models import Tenant

ADDRESS_FIELDS = ("to", "cc", "bcc")
MAX_ADDRESS_FIELD = 64 * 1024  # characters of one recipients box (1,000 long addresses fit)
MAX_SUBJECT = 900
MAX_TEXT = 4 * 1024 * 1024  # characters of the body: the same cap as the multipart text part
EXPIRY_CHOICES = ("", "1d", "7d", "30d", "date")  # "" = the tenant's usual period
_CHUNK = re.compile(r"[,;\r\n]+")
_BRACKETED = re.compile(r"<([^<>]*)>")


@dataclasses.dataclass
class ComposeForm:
    """The values as typed (kept to show the form again) and the errors by field."""

    to: str = ""
    cc: str = ""
    bcc: str = ""
    subject: str = ""
    text: str = ""
    expires: str = ""
    expires_date: str = ""
    receipt: bool = False
    reply: str = "all"
    forward: str = "yes"
    # the sender-set passphrase (issue 16): never shown back on the page, never stored in
    # clear (conversations.guards keeps its hash)
    passphrase: str = dataclasses.field(default="", repr=False)
    passphrase_hint: str = ""
    errors: dict[str, str] = dataclasses.field(default_factory=dict)
    # the checked result: envelope recipients per field, normalized and without duplicates
    addresses: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    @classmethod
    def blank(cls, tenant: Tenant) -> ComposeForm:
        """A new form with the tenant's defaults chosen."""
        return cls(
            receipt=bool(tenant.receipt_default),
            reply=tenant.reply_default if tenant.reply_default in options.REPLY_MODES else "all",
            forward=(
                tenant.forward_default if tenant.forward_default in options.FORWARD_MODES else "yes"
            ),
        )

    @property
    def recipients(self) -> list[str]:
        """Every envelope recipient (To, Cc, Bcc), each once."""
        return [a for name in ADDRESS_FIELDS for a in self.addresses.get(name, [])]


def split_addresses(text: str) -> tuple[list[str], list[str]]:
    """The addresses in a recipients box (separated by commas, semicolons, spaces or line
    breaks; ``Name <address>`` keeps the address) and the pieces that are not addresses."""
    good: list[str] = []
    bad: list[str] = []
    for chunk in _CHUNK.split(text):
        bracketed = _BRACKETED.findall(chunk)
        words = bracketed if bracketed else chunk.split()
        rest: list[str] = []  # the words of this piece that are not addresses, kept together
        for word in words:
            word = word.strip().strip("<>\"'")
            if not word:
                continue
            try:
                good.append(parse_address(word))
            except InvalidAddress:
                rest.append(word)
        if rest:
            bad.append(" ".join(rest)[:80])
    return good, bad


def _text(form: FormData, name: str, limit: int) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


def _describe(bad: list[str]) -> str:
    shown = ", ".join(f"“{b}”" for b in bad[:3])
    more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
    noun = "is not an email address" if len(bad) == 1 else "are not email addresses"
    return f"{shown}{more} {noun}. Check the spelling and separate addresses with commas."


def read(
    form: FormData, tenant: Tenant, max_recipients: int, now: float | None = None
) -> ComposeForm:
    """The posted form, checked: every error a sentence for the person who typed it."""
    when = time.time() if now is None else now
    f = ComposeForm(
        to=_text(form, "to", MAX_ADDRESS_FIELD),
        cc=_text(form, "cc", MAX_ADDRESS_FIELD),
        bcc=_text(form, "bcc", MAX_ADDRESS_FIELD),
        subject=_text(form, "subject", MAX_SUBJECT + 1),
        text=_text(form, "text", MAX_TEXT + 1),
        expires=_text(form, "expires", 10),
        expires_date=_text(form, "expires_date", 40).strip(),
        receipt=_text(form, "receipt", 10) in ("yes", "on", "1"),
        reply=_text(form, "reply", 10),
        forward=_text(form, "forward", 10),
        passphrase=_text(form, "passphrase", guards.MAX_LENGTH + 1),
        passphrase_hint=_text(form, "passphrase_hint", guards.MAX_HINT + 1).strip(),
    )
    seen: set[str] = set()
    for name in ADDRESS_FIELDS:
        good, bad = split_addresses(getattr(f, name))
        if bad:
            f.errors[name] = _describe(bad)
        kept: list[str] = []
        for address in good:
            if address not in seen:
                seen.add(address)
                kept.append(address)
        f.addresses[name] = kept
    if not f.recipients and "to" not in f.errors:
        f.errors["to"] = "Add at least one recipient (To, Cc or Bcc)."
    if len(f.recipients) > max_recipients:
        f.errors["to"] = (
            f"A message can go to at most {max_recipients} recipients in all; this one has "
            f"{len(f.recipients)}. Split it into several messages."
        )
    if len(f.subject) > MAX_SUBJECT:
        f.errors["subject"] = f"The subject is longer than {MAX_SUBJECT} characters; shorten it."
    if any(c in f.subject for c in "\r\n\0"):
        f.subject = " ".join(f.subject.replace("\0", " ").split())
    if len(f.text) > MAX_TEXT:
        f.errors["text"] = "The message text is too long; send the rest as an attachment."
    if f.expires not in EXPIRY_CHOICES:
        f.errors["expires"] = "Choose how long the message stays readable."
    elif f.expires == "date":
        if not f.expires_date:
            f.errors["expires"] = "You chose a date: enter it in the date field."
        else:
            try:
                options.parse_when(f.expires_date, when)
            except ValueError:
                f.errors["expires"] = (
                    "Enter a date in the future (at most ten years away), like 2030-01-31."
                )
    if f.reply not in options.REPLY_MODES:
        f.errors["reply"] = "Choose who the recipients may reply to."
    if f.forward not in options.FORWARD_MODES:
        f.errors["forward"] = "Choose whether the recipients may forward the message."
    if f.passphrase:
        problem = guards.passphrase_problem(f.passphrase, recipients=f.recipients)
        problem = problem or guards.hint_problem(f.passphrase_hint, f.passphrase)
        if problem:
            f.errors["passphrase"] = problem
    elif f.passphrase_hint:
        hint_alone = "You wrote a hint but no passphrase: add one, or clear the hint."
        f.errors["passphrase"] = hint_alone
    return f


def option_headers(f: ComposeForm) -> dict[str, str]:
    """The ``X-Sealmail-*`` headers of a checked form: encryption always, then every option
    stated (receipt, reply and forward also when they equal the tenant's default, so a
    later change of the default does not change what the sender chose); no expiry header
    when the sender left the tenant's usual period."""
    headers = {"X-Sealmail-Encrypt": "yes"}
    if f.expires == "date":
        headers[options.EXPIRES] = f.expires_date
    elif f.expires:
        headers[options.EXPIRES] = f.expires
    headers[options.RECEIPT] = "yes" if f.receipt else "no"
    headers[options.REPLY] = f.reply
    headers[options.FORWARD] = f.forward
    return headers
