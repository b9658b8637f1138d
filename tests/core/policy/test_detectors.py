"""Detectors check numbers, not just their shape (hypothesis generates valid ones)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from core.policy.detectors import count_credit_cards, count_ibans, iban_ok, luhn_ok


def _luhn_complete(body: str) -> str:
    for d in "0123456789":
        if luhn_ok(body + d):
            return body + d
    raise AssertionError


@given(st.text("0123456789", min_size=14, max_size=14), st.sampled_from(["", " ", "-"]))
def test_luhn_valid_visa_numbers_are_found(body: str, sep: str) -> None:
    number = _luhn_complete("4" + body)
    shown = sep.join(number[i : i + 4] for i in range(0, 16, 4)) if sep else number
    assert count_credit_cards(f"pay with {shown}, thanks") == 1
    wrong = number[:-1] + str((int(number[-1]) + 1) % 10)
    assert not luhn_ok(wrong)
    assert count_credit_cards(f"pay with {wrong}") == 0


def _iban(country: str, bban: str) -> str:
    digits = "".join(str(int(c, 36)) for c in bban + country + "00")
    check = 98 - int(digits) % 97
    return f"{country}{check:02d}{bban}"


@given(st.text("0123456789", min_size=18, max_size=18), st.integers(0, 17), st.integers(1, 9))
def test_iban_checksum(bban: str, pos: int, delta: int) -> None:
    iban = _iban("DE", bban)
    assert iban_ok(iban) and count_ibans(f"IBAN {iban}.") == 1
    broken = list(iban)
    broken[4 + pos] = str((int(broken[4 + pos]) + delta) % 10)
    assert not iban_ok("".join(broken))  # mod 97 catches every single-digit change


def test_random_digit_runs_are_not_cards() -> None:
    assert count_credit_cards("order 1234567890123456 and phone 0044 20 7946 0958") == 0
