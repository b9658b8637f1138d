"""Per-message options read from headers: durations and dates, yes/no, the modes, and an
invalid value ignored with a warning (never an exception)."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conversations.options import MAX_DURATION, Options, parse, parse_when

NOW = 1_700_000_000.0


def _get(values: dict[str, str]):  # noqa: ANN202
    return lambda name: values.get(name)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90m", 5400), ("2h", 7200), (" 7D ", 7 * 86400), ("2w", 14 * 86400), ("30s", 30)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_when(text, NOW) == NOW + seconds


def test_dates() -> None:
    at = parse_when("2030-01-02T03:04:05Z", NOW)
    assert at == datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.UTC).timestamp()
    assert parse_when("2030-01-02T05:04:05+02:00", NOW) == at
    end_of_day = datetime.datetime(2030, 1, 2, 23, 59, 59, tzinfo=datetime.UTC).timestamp()
    assert parse_when("2030-01-02", NOW) == end_of_day


@pytest.mark.parametrize(
    "text",
    ["0h", "yesterday", "2030-01-02T03:04:05", "2000-01-01", "11000d", "", "2h30m", "-2h"],
)
def test_refused_values(text: str) -> None:
    with pytest.raises(ValueError):
        parse_when(text, NOW)


def test_all_four_options() -> None:
    got = parse(
        _get(
            {
                "X-Sealmail-Expires": "2h",
                "X-Sealmail-Receipt": "Yes",
                "X-Sealmail-Reply": "SENDER",
                "X-Sealmail-Forward": "internal",
            }
        ),
        NOW,
    )
    assert got == Options(NOW + 7200, True, "sender", "internal", None, ())


def test_absent_and_empty_mean_the_defaults() -> None:
    assert parse(_get({}), NOW) == Options()
    assert parse(_get({"X-Sealmail-Reply": "  "}), NOW) == Options()
    assert parse(_get({"X-Sealmail-Receipt": "no"}), NOW).receipt is False


def test_invalid_values_are_warnings() -> None:
    got = parse(
        _get(
            {
                "X-Sealmail-Expires": "soon",
                "X-Sealmail-Receipt": "maybe",
                "X-Sealmail-Reply": "everyone",
                "X-Sealmail-Forward": "outside",
            }
        ),
        NOW,
    )
    assert (got.expires_at, got.receipt, got.reply, got.forward) == (None, None, None, None)
    assert len(got.warnings) == 4
    assert [w.split(" ")[0] for w in got.warnings] == [
        "X-Sealmail-Expires",
        "X-Sealmail-Receipt",
        "X-Sealmail-Reply",
        "X-Sealmail-Forward",
    ]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80), st.text(max_size=80), st.text(max_size=80), st.text(max_size=80))
def test_any_header_text_never_raises(expires: str, receipt: str, reply: str, fwd: str) -> None:
    got = parse(
        _get(
            {
                "X-Sealmail-Expires": expires,
                "X-Sealmail-Receipt": receipt,
                "X-Sealmail-Reply": reply,
                "X-Sealmail-Forward": fwd,
            }
        ),
        NOW,
    )
    if got.expires_at is not None:
        assert NOW < got.expires_at <= NOW + MAX_DURATION
    assert got.reply in (None, "none", "sender", "all")
    assert got.forward in (None, "no", "internal", "yes")
