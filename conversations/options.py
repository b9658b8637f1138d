"""Per-message options set by headers (SPEC §3): a transport rule, the Outlook add-in or
``/compose`` sets them, the pipeline reads them, and they are removed before anything leaves
(they start with ``X-Sealmail-``, like every internal header).

An invalid value is ignored with a warning (returned, for the caller to log), never a
rejected message.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
from collections.abc import Callable

EXPIRES = "X-Sealmail-Expires"
RECEIPT = "X-Sealmail-Receipt"
REPLY = "X-Sealmail-Reply"
FORWARD = "X-Sealmail-Forward"
# the reference of a passphrase the sender registered first (conversations.guards): never
# the passphrase itself, which would then sit in the sender's Sent Items
PASSPHRASE_REF = "X-Sealmail-Passphrase-Ref"  # noqa: S105 - a header name
HEADERS = (EXPIRES, RECEIPT, REPLY, FORWARD, PASSPHRASE_REF)
_REF = re.compile(r"^pp_[a-z2-7]{16,26}$")

REPLY_MODES = ("none", "sender", "all")
FORWARD_MODES = ("no", "internal", "yes")

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d{1,6})\s*([smhdw])\s*$", re.IGNORECASE)
MAX_DURATION = 10 * 366 * 86400  # ten years: anything longer is a typo


@dataclasses.dataclass(frozen=True)
class Options:
    expires_at: float | None = None  # epoch seconds; None = the default link lifetime
    receipt: bool | None = None  # None = the tenant's default
    reply: str | None = None  # none | sender | all; None = the tenant's default
    forward: str | None = None  # no | internal | yes; None = the tenant's default
    passphrase_ref: str | None = None  # a registered passphrase's reference (pp_...)
    warnings: tuple[str, ...] = ()


def parse_when(value: str, now: float, *, allow_past: bool = False) -> float:
    """A duration from now (``90m``, ``2h``, ``7d``, ``2w``) or an RFC 3339 date-time (a
    date alone means the end of that day, UTC) as epoch seconds; ValueError otherwise, or
    when it is not in the future. ``allow_past`` (a sender ending access at once) also
    takes ``now`` and a date already past, returned as it is."""
    text = value.strip()
    if allow_past and text.lower() == "now":
        return now
    m = _DURATION.match(text)
    if m:
        seconds = int(m.group(1)) * _UNITS[m.group(2).lower()]
        if not 0 < seconds <= MAX_DURATION:
            raise ValueError(f"duration {text!r} is out of range")
        return now + seconds
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = datetime.date.fromisoformat(text)
            when = datetime.datetime.combine(day, datetime.time(23, 59, 59), datetime.UTC)
        else:
            when = datetime.datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
            if when.tzinfo is None:
                raise ValueError("a date-time needs its offset (Z or +hh:mm)")
    except ValueError as exc:
        raise ValueError(
            f"{text[:60]!r} is neither a duration (2h, 7d) nor an RFC 3339 date: {exc}"
        ) from None
    at = when.timestamp()
    if at <= now and not allow_past:
        raise ValueError(f"{text[:60]!r} is in the past")
    if at - now > MAX_DURATION:
        raise ValueError(f"{text[:60]!r} is more than ten years away")
    return at


def parse(get: Callable[[str], str | None], now: float) -> Options:
    """The options from a message's headers; ``get(name)`` returns a header's (first,
    decoded) value or None."""
    warnings: list[str] = []
    expires_at: float | None = None
    receipt: bool | None = None
    reply: str | None = None
    forward: str | None = None

    raw = get(EXPIRES)
    if raw is not None and raw.strip():
        try:
            expires_at = parse_when(raw, now)
        except ValueError as exc:
            warnings.append(f"{EXPIRES} ignored: {exc}")
    raw = get(RECEIPT)
    if raw is not None and raw.strip():
        word = raw.strip().lower()
        if word in ("yes", "true", "1", "on"):
            receipt = True
        elif word in ("no", "false", "0", "off"):
            receipt = False
        else:
            warnings.append(f"{RECEIPT} ignored: {raw.strip()[:40]!r} is not yes or no")
    raw = get(REPLY)
    if raw is not None and raw.strip():
        word = raw.strip().lower()
        if word in REPLY_MODES:
            reply = word
        else:
            warnings.append(f"{REPLY} ignored: {raw.strip()[:40]!r} is not none, sender or all")
    raw = get(FORWARD)
    if raw is not None and raw.strip():
        word = raw.strip().lower()
        if word in FORWARD_MODES:
            forward = word
        else:
            warnings.append(f"{FORWARD} ignored: {raw.strip()[:40]!r} is not no, internal or yes")
    passphrase_ref: str | None = None
    raw = get(PASSPHRASE_REF)
    if raw is not None and raw.strip():
        # kept even when malformed: the pipeline then fails safe (step-up), since the sender
        # asked for more protection, not less
        passphrase_ref = raw.strip()[:40]
        if not _REF.match(passphrase_ref):
            warnings.append(f"{PASSPHRASE_REF}: {passphrase_ref!r} is not a reference")
    return Options(expires_at, receipt, reply, forward, passphrase_ref, tuple(warnings))
