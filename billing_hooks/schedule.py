"""The dunning schedule as data: which action is due how many days after an invoice's due
date, and what makes an account delinquent. The built-in table is our published policy;
``billing_schedule_file`` (TOML) replaces any part of it.

Days are counted from the invoice's due date (the 1st of the month for our invoices) and a
day is judged when it is over: ``offset = 0`` means "still unpaid at the end of the due
date (the 1st)", ``offset = 4`` "still unpaid at the end of the 5th", ``offset = 14``
"still unpaid when the 15th is over", i.e. suspended from the 16th on.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

from core.errors import ConfigError

# What the engine may ask for. Each leaves as a signed outbound webhook of the same name;
# some also email the billing contact (see branding/billing_mail.py).
TICKET_OPEN = "ticket.open"
PHONE_FOLLOWUP = "contact.phone_followup"
FEE_LATE = "fee.late"
CHARGE_SECONDARY = "charge.secondary"
SECONDARY_REQUEST = "secondary.request"
ACCOUNT_FLAG = "account.flag_delinquent"
SUSPEND = "service.suspend"
RESUME = "service.resume"
RULE_ACTIONS = (TICKET_OPEN, PHONE_FOLLOWUP, FEE_LATE, CHARGE_SECONDARY, SUSPEND)


@dataclasses.dataclass(frozen=True)
class Rule:
    """``action`` when an invoice is still unpaid at the end of ``due_on + offset`` days.
    ``flagged``: only for an account that was delinquent when the invoice fell due."""

    action: str
    offset: int
    flagged: bool = False


@dataclasses.dataclass(frozen=True)
class Schedule:
    rules: tuple[Rule, ...]
    # an invoice unpaid at the end of due_on + this many days is "seriously late"
    seriously_late_offset: int = 4
    # more than this many seriously late invoices in one calendar year: delinquent
    delinquent_after: int = 2
    # a delinquent flag lasts the rest of its year and this many calendar years after it
    delinquent_carry_years: int = 1


DEFAULT_SCHEDULE = Schedule(
    rules=(
        Rule(TICKET_OPEN, 0),  # unpaid on the 1st: ticket + email to the billing contact
        Rule(PHONE_FOLLOWUP, 0),  # ... and a task to call them
        Rule(FEE_LATE, 4),  # unpaid on the 5th: late fee (and seriously late)
        Rule(SUSPEND, 14),  # unpaid after the 15th: suspended
        Rule(CHARGE_SECONDARY, 0, flagged=True),  # delinquent: charge the secondary source
        Rule(SUSPEND, 2, flagged=True),  # delinquent: neither source paid by end of the 3rd
    )
)


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"billing schedule: {what} must be a whole number >= 0")
    return value


def schedule_from_dict(data: dict[str, Any]) -> Schedule:
    """A schedule from parsed TOML: ``[[rules]] action/offset/flagged`` and the three
    numbers; anything not given keeps the built-in value."""
    known = {"rules", "seriously_late_offset", "delinquent_after", "delinquent_carry_years"}
    for key in data:
        if key not in known:
            raise ConfigError(f"billing schedule: unknown key {key!r}")
    rules = DEFAULT_SCHEDULE.rules
    if "rules" in data:
        if not isinstance(data["rules"], list):
            raise ConfigError("billing schedule: 'rules' must be an array of tables")
        parsed = []
        for i, raw in enumerate(data["rules"]):
            if not isinstance(raw, dict) or set(raw) - {"action", "offset", "flagged"}:
                raise ConfigError(f"billing schedule: rule {i + 1} needs action, offset, flagged")
            action = raw.get("action")
            if action not in RULE_ACTIONS:
                raise ConfigError(
                    f"billing schedule: rule {i + 1}: action must be one of "
                    f"{', '.join(RULE_ACTIONS)}"
                )
            flagged = raw.get("flagged", False)
            if not isinstance(flagged, bool):
                raise ConfigError(f"billing schedule: rule {i + 1}: flagged must be true/false")
            parsed.append(Rule(action, _int(raw.get("offset"), f"rule {i + 1} offset"), flagged))
        rules = tuple(parsed)
    return Schedule(
        rules=rules,
        seriously_late_offset=_int(
            data.get("seriously_late_offset", DEFAULT_SCHEDULE.seriously_late_offset),
            "seriously_late_offset",
        ),
        delinquent_after=_int(
            data.get("delinquent_after", DEFAULT_SCHEDULE.delinquent_after), "delinquent_after"
        ),
        delinquent_carry_years=_int(
            data.get("delinquent_carry_years", DEFAULT_SCHEDULE.delinquent_carry_years),
            "delinquent_carry_years",
        ),
    )


def load_schedule(path: str) -> Schedule:
    """``billing_schedule_file``: "" is the built-in schedule."""
    if not path:
        return DEFAULT_SCHEDULE
    try:
        with Path(path).open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"billing schedule file {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"billing schedule file {path}: {exc}") from None
    return schedule_from_dict(data)
