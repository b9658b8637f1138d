"""Naming people and times the way a sentence does: "Alice Smith sent this on 3 December
2025 at 14:05 UTC to you and Carol." Everything here is pure: header values in, words out."""

from __future__ import annotations

import datetime
import email.utils
from collections.abc import Iterable

from core.mime_text import clean

_MONTHS = (
    "January February March April May June July August September October November December"
).split()
MAX_NAMED = 8  # more recipients than this: "and 12 others"
MAX_ADDRESS_TEXT = 998  # a longer "address" is not one (and can exhaust the parser's stack)


def split_address(value: str) -> tuple[str, str]:
    """``("Alice Smith", "alice@acme.example")`` from a header value; the name may be "".
    Text that is no address comes back as the name (cut short), with no address."""
    text = clean(value)
    if len(text) > MAX_ADDRESS_TEXT:
        return text[:120] + "…", ""
    try:
        name, addr = email.utils.parseaddr(text)
    except (RecursionError, ValueError, IndexError, TypeError):
        return text, ""
    return clean(name).strip("'\" "), addr.strip().lower()


def short_name(value: str, me: str = "") -> str:
    """The display name, else the address; "you" for the session's own address."""
    name, addr = split_address(value)
    if me and addr and addr == me.strip().lower():
        return "you"
    return name or addr or clean(value)


def full_name(value: str) -> str:
    """``Alice Smith <alice@acme.example>``, or the address alone when there is no name."""
    name, addr = split_address(value)
    if name and addr:
        return f"{name} <{addr}>"
    return addr or name or clean(value)


def name_of(address: str, headers: Iterable[str]) -> str:
    """How the message's own To/Cc headers name ``address`` ("Bob <bob@x>"), else the
    address itself."""
    want = address.strip().lower()
    for value in headers:
        name, addr = split_address(value)
        if addr == want and name:
            return f"{name} <{addr}>"
    return want


def join_names(names: list[str]) -> str:
    """``you``, ``you and Carol``, ``you, Carol and Dan``, ``... and 3 others``; "you"
    always first."""
    names = sorted(dict.fromkeys(n for n in names if n), key=lambda n: n != "you")
    if len(names) > MAX_NAMED:
        rest = len(names) - (MAX_NAMED - 1)
        names = names[: MAX_NAMED - 1] + [f"{rest} others"]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def parse_date(header: str) -> datetime.datetime | None:
    try:
        when = email.utils.parsedate_to_datetime(clean(header))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.astimezone(datetime.UTC)


def spoken_date(header: str, fallback: float | None = None) -> str:
    """``3 December 2025 at 14:05 UTC`` from a Date header (else from ``fallback``, epoch
    seconds); "" when neither is known."""
    when = parse_date(header) if header else None
    if when is None and fallback is not None:
        when = datetime.datetime.fromtimestamp(fallback, datetime.UTC)
    if when is None:
        return clean(header)[:60]
    return f"{when.day} {_MONTHS[when.month - 1]} {when.year} at {when:%H:%M} UTC"


def short_date(header: str, fallback: float | None = None) -> str:
    """``3 Dec 2025`` for lists."""
    when = parse_date(header) if header else None
    if when is None and fallback is not None:
        when = datetime.datetime.fromtimestamp(fallback, datetime.UTC)
    return f"{when.day} {_MONTHS[when.month - 1][:3]} {when.year}" if when else ""


def sent_sentence(
    sender: str, date: str, to: Iterable[str], cc: Iterable[str], *, me: str, mine: bool
) -> str:
    """One sentence for a message's head: who sent it, when, to whom, with a copy to whom."""
    who = "You" if mine else short_name(sender, me)
    words = [f"{who} sent this"]
    when = spoken_date(date)
    if when:
        words.append(f"on {when}")
    to_names = join_names([short_name(a, me) for a in to])
    if to_names:
        words.append(f"to {to_names}")
    cc_names = join_names([short_name(a, me) for a in cc])
    if cc_names:
        words.append(f"with a copy to {cc_names}")
    sentence = " ".join(words)
    if to_names and cc_names:
        sentence = sentence.replace(f" with a copy to {cc_names}", f", with a copy to {cc_names}")
    return sentence + "."
