"""Billing settings and the schedule file: validated at start, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from billing_hooks.schedule import DEFAULT_SCHEDULE, Rule, load_schedule
from billing_hooks.signing import SignatureError, sign, verify
from core.config.loading import load_settings
from core.errors import ConfigError


def test_billing_settings() -> None:
    s = load_settings(
        None,
        env={"SEALMAIL_BILLING_WEBHOOK_SECRET": "s3cret-value"},
        overrides={"billing_timezone": "Europe/Berlin", "billing_outbound_url": "https://b.test/h"},
    )
    assert s.billing_webhook_secret.reveal() == "s3cret-value"
    assert "s3cret-value" not in repr(s)
    assert (s.billing_timezone, s.billing_outbound_url) == ("Europe/Berlin", "https://b.test/h")
    defaults = load_settings(None, env={})
    assert defaults.billing_timezone == "UTC" and not defaults.billing_webhook_secret
    for key, value in (
        ("billing_timezone", "Mars/Olympus"),
        ("billing_outbound_url", "ftp://b.test"),
        ("billing_pay_url", "pay here"),
    ):
        with pytest.raises(ConfigError, match=key):
            load_settings(None, env={}, overrides={key: value})


def test_schedule_file(tmp_path: Path) -> None:
    assert load_schedule("") is DEFAULT_SCHEDULE
    path = tmp_path / "schedule.toml"
    path.write_text(
        'delinquent_after = 3\n[[rules]]\naction = "service.suspend"\noffset = 20\n'
        '[[rules]]\naction = "service.suspend"\noffset = 5\nflagged = true\n'
    )
    schedule = load_schedule(str(path))
    assert schedule.delinquent_after == 3
    assert schedule.seriously_late_offset == DEFAULT_SCHEDULE.seriously_late_offset
    assert schedule.rules == (Rule("service.suspend", 20), Rule("service.suspend", 5, True))
    for text, message in (
        ('[[rules]]\naction = "delete.everything"\noffset = 1\n', "action must be one of"),
        ('[[rules]]\naction = "fee.late"\noffset = -1\n', "offset"),
        ("grace = 3\n", "unknown key 'grace'"),
        ("rules = [", "schedule.toml"),
    ):
        path.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_schedule(str(path))
    with pytest.raises(ConfigError, match="not found"):
        load_schedule(str(tmp_path / "missing.toml"))


def test_signature_unit() -> None:
    body = b'{"id":"e","type":"x"}'
    header = sign("k", body, 1_000_000)
    assert verify(header, body, "k", now=1_000_300) == 1_000_000
    for now in (1_000_301, 999_699):
        with pytest.raises(SignatureError, match="tolerance"):
            verify(header, body, "k", now=now)
    with pytest.raises(SignatureError, match="does not match"):
        verify(header.upper().replace("T=", "t=").replace("V1=", "v1="), body + b" ", "k", now=1e6)
