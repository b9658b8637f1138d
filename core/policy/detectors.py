"""Built-in detectors: each counts its findings in a text and never returns what it found.

Numbers are checked, not just shaped: card numbers pass Luhn and an issuer prefix, IBANs
pass ISO 13616's mod-97 and their country's length, SSNs avoid the ranges never issued.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# Patterns start with a character class (not a look-behind) so the scanner can skip ahead
# quickly: the look-behind comes after the first digit. Several times faster on long text.
_CARD = re.compile(
    r"\d(?<![\d.-]\d)(?:\d{12,18}"
    r"|\d{3}([ -])\d{4}\1\d{4}\1\d{4}(?:\1\d{1,3})?"
    r"|\d{3}([ -])\d{6}\2\d{4,5})(?![\d-])"
)
_SSN = re.compile(r"\d(?<![\d-]\d)\d\d([- ])\d{2}\1\d{4}(?![\d-])")
_IBAN = re.compile(r"\b([A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?)\b")
_NINO = re.compile(
    r"[A-CEGHJ-PR-TW-Z](?<![A-Z0-9][A-Z])[A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b"
)
_NINO_BAD_PREFIX = ("BG", "GB", "NK", "KN", "TN", "NT", "ZZ")
# Necessary parts of a NINO and an IBAN that start with a digit: the engine skips ahead to
# digits quickly, where the full patterns (starting with a letter) try every letter. Only a
# text holding one of these is scanned with the full pattern.
_NINO_CORE = re.compile(r"\d\d ?\d\d ?\d\d ?[A-D]")
_IBAN_CORE = re.compile(r"\d\d ?[A-Z0-9]{4} ?[A-Z0-9]{4}")
_DIGITS = "0123456789"
_ANY_DIGIT = re.compile(r"\d")
_EMAIL_DOMAIN = re.compile(r"@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})+")
_EMAIL_LOCAL = re.compile(r"[\w.+-]{1,64}$")

IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip


def has_digit(text: str) -> bool:
    """Whether ``text`` holds any digit (``\\d``: any script's). Every number detector needs
    one; an ASCII text is checked with ten substring searches, far faster than a scan."""
    if text.isascii():
        return any(d in text for d in _DIGITS)
    return _ANY_DIGIT.search(text) is not None


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _issuer_ok(n: str) -> bool:
    length = len(n)
    if n[0] == "4":
        return length in (13, 16, 19)  # Visa
    two, four = int(n[:2]), int(n[:4])
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return length == 16  # Mastercard
    if two in (34, 37):
        return length == 15  # American Express
    if n.startswith(("6011", "65")) or 644 <= int(n[:3]) <= 649 or two == 62:
        return 16 <= length <= 19  # Discover, UnionPay
    if 3528 <= four <= 3589:
        return 16 <= length <= 19  # JCB
    if 300 <= int(n[:3]) <= 305 or two in (36, 38):
        return 14 <= length <= 19  # Diners
    return False


def count_credit_cards(text: str) -> int:
    if not has_digit(text):
        return 0
    n = 0
    for m in _CARD.finditer(text):
        digits = re.sub(r"[ -]", "", m.group(0))
        if 13 <= len(digits) <= 19 and _issuer_ok(digits) and luhn_ok(digits):
            n += 1
    return n


def iban_ok(candidate: str) -> bool:
    s = candidate.replace(" ", "").upper()
    expected = IBAN_LENGTHS.get(s[:2])
    if expected is None or len(s) != expected:
        return False
    rearranged = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def count_ibans(text: str) -> int:
    if not has_digit(text) or _IBAN_CORE.search(text) is None:
        return 0
    return sum(1 for m in _IBAN.finditer(text) if iban_ok(m.group(1)))


def count_ssns(text: str) -> int:
    if not has_digit(text):
        return 0
    n = 0
    for m in _SSN.finditer(text):
        area, group, serial = m.group(0)[:3], m.group(0)[4:6], m.group(0)[7:]
        if area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000":
            n += 1  # ranges never issued are left out
    return n


def count_ninos(text: str) -> int:
    if not has_digit(text):
        return 0
    upper = text.upper()
    if _NINO_CORE.search(upper) is None:
        return 0
    return sum(1 for m in _NINO.finditer(upper) if m.group(0)[:2] not in _NINO_BAD_PREFIX)


def count_emails(text: str) -> int:
    """Distinct addresses: found by their ``@domain`` first (cheap to scan for)."""
    found = set()
    for m in _EMAIL_DOMAIN.finditer(text):
        local = _EMAIL_LOCAL.search(text, max(0, m.start() - 64), m.start())
        if local:
            found.add((local.group(0) + m.group(0)).lower())
    return len(found)


BUILTIN: dict[str, Callable[[str], int]] = {
    "credit_card": count_credit_cards,
    "us_ssn": count_ssns,
    "iban": count_ibans,
    "uk_nino": count_ninos,
    "email_addresses": count_emails,
}


def dictionary_counter(words: tuple[str, ...]) -> Callable[[str, str | None], int]:
    """Whole-word, case-insensitive occurrences of any of ``words`` (phrases allowed)."""
    alternation = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    pattern = re.compile(rf"(?:{alternation})(?!\w)", re.IGNORECASE)
    # ASCII words in an ASCII text match case-insensitively only where the lower-cased word
    # is a substring of the lower-cased text: most mail holds none, and is not scanned
    lowered = tuple(w.lower() for w in words) if all(w.isascii() for w in words) else None

    def count(text: str, lower: str | None = None) -> int:
        """``lower``: ``text.lower()`` if the caller has it already (an ASCII text)."""
        if lowered is not None and text.isascii():
            low = lower if lower is not None else text.lower()
            if not any(w in low for w in lowered):
                return 0
        return sum(1 for m in pattern.finditer(text) if not _word_before(text, m.start()))

    return count


def _word_before(text: str, i: int) -> bool:
    return i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_")
