"""A calendar year of the dunning policy, driven day by day through the pure engine.

The expected table below is written from the published policy (SPEC §7, docs/billing.md),
not from the engine's output. Invoices fall due on the 1st of each month; a day is judged
when it is over, so "unpaid on the 1st" means not paid by the end of the 1st, and "after
the 15th" is the run that judges the 15th (service off from the 16th).
"""

from __future__ import annotations

import dataclasses
import datetime

from billing_hooks.dunning import (
    REASON_BILLING,
    AccountState,
    Action,
    InvoiceState,
    evaluate,
    is_delinquent,
    reinstatement,
)
from billing_hooks.schedule import DEFAULT_SCHEDULE, SUSPEND, schedule_from_dict

YEAR = 2027
D = datetime.date


def d(month: int, day: int, year: int = YEAR) -> datetime.date:
    return D(year, month, day)


# When each account pays each month's invoice (default: on the due date, the 1st).
PAYMENTS: dict[str, dict[int, datetime.date | None]] = {
    "ontime": {},
    "late_once": {3: d(3, 3)},
    "thrice": {2: d(2, 7), 4: d(4, 7), 6: d(6, 7), 9: d(9, 2)},
    "flag_pays": {1: d(1, 6), 2: d(2, 6), 3: d(3, 6), 4: d(4, 3)},
    "flag_fails": {1: d(1, 8), 2: d(2, 8), 3: d(3, 8), 4: d(4, 10)},
    "partner": {5: d(5, 20)},
    "nfr": {m: None for m in range(1, 13)},  # never pays: free licence, never dunned
}
SECONDARY_ADDED = {"flag_pays": d(3, 20)}
TRIALS = {
    "trial": (d(6, 30), None),  # ends on 30 June, never converted
    "converted": (d(6, 30), d(6, 15)),  # converted to paid on 15 June
}

EXPECTED: set[tuple[datetime.date, str, str, str]] = {
    # late_once: unpaid at the end of 1 March -> ticket + phone follow-up; paid on the 3rd
    (d(3, 1), "late_once", "ticket.open", "03"),
    (d(3, 1), "late_once", "contact.phone_followup", "03"),
    # thrice: seriously late in February, April and June (paid on the 7th each time)
    (d(2, 1), "thrice", "ticket.open", "02"),
    (d(2, 1), "thrice", "contact.phone_followup", "02"),
    (d(2, 5), "thrice", "fee.late", "02"),
    (d(4, 1), "thrice", "ticket.open", "04"),
    (d(4, 1), "thrice", "contact.phone_followup", "04"),
    (d(4, 5), "thrice", "fee.late", "04"),
    (d(6, 1), "thrice", "ticket.open", "06"),
    (d(6, 1), "thrice", "contact.phone_followup", "06"),
    (d(6, 5), "thrice", "fee.late", "06"),
    # ... the third time in the year: flagged, and asked for a secondary source (none on file)
    (d(6, 5), "thrice", "account.flag_delinquent", ""),
    (d(6, 5), "thrice", "secondary.request", ""),
    # September, flagged and still no secondary: asked again at the due date; paid the 2nd
    (d(9, 1), "thrice", "ticket.open", "09"),
    (d(9, 1), "thrice", "contact.phone_followup", "09"),
    (d(9, 1), "thrice", "secondary.request", "09"),
    # flag_pays: seriously late Jan, Feb, Mar -> flagged on 5 March; adds a secondary later
    (d(1, 1), "flag_pays", "ticket.open", "01"),
    (d(1, 1), "flag_pays", "contact.phone_followup", "01"),
    (d(1, 5), "flag_pays", "fee.late", "01"),
    (d(2, 1), "flag_pays", "ticket.open", "02"),
    (d(2, 1), "flag_pays", "contact.phone_followup", "02"),
    (d(2, 5), "flag_pays", "fee.late", "02"),
    (d(3, 1), "flag_pays", "ticket.open", "03"),
    (d(3, 1), "flag_pays", "contact.phone_followup", "03"),
    (d(3, 5), "flag_pays", "fee.late", "03"),
    (d(3, 5), "flag_pays", "account.flag_delinquent", ""),
    (d(3, 5), "flag_pays", "secondary.request", ""),
    # April: the primary did not pay on the 1st -> the secondary is charged; paid by the 3rd
    (d(4, 1), "flag_pays", "ticket.open", "04"),
    (d(4, 1), "flag_pays", "contact.phone_followup", "04"),
    (d(4, 1), "flag_pays", "charge.secondary", "04"),
    # flag_fails: same first quarter, no secondary source ever
    (d(1, 1), "flag_fails", "ticket.open", "01"),
    (d(1, 1), "flag_fails", "contact.phone_followup", "01"),
    (d(1, 5), "flag_fails", "fee.late", "01"),
    (d(2, 1), "flag_fails", "ticket.open", "02"),
    (d(2, 1), "flag_fails", "contact.phone_followup", "02"),
    (d(2, 5), "flag_fails", "fee.late", "02"),
    (d(3, 1), "flag_fails", "ticket.open", "03"),
    (d(3, 1), "flag_fails", "contact.phone_followup", "03"),
    (d(3, 5), "flag_fails", "fee.late", "03"),
    (d(3, 5), "flag_fails", "account.flag_delinquent", ""),
    (d(3, 5), "flag_fails", "secondary.request", ""),
    (d(4, 1), "flag_fails", "ticket.open", "04"),
    (d(4, 1), "flag_fails", "contact.phone_followup", "04"),
    (d(4, 1), "flag_fails", "secondary.request", "04"),
    # nothing paid by the end of the 3rd: suspended (off from the 4th) ...
    (d(4, 3), "flag_fails", "service.suspend", "04"),
    # ... and the late fee of the 5th still applies
    (d(4, 5), "flag_fails", "fee.late", "04"),
    # paid on the 10th: reinstated at once
    (d(4, 10), "flag_fails", "service.resume", ""),
    # partner: May unpaid until the 20th -> ticket, fee, suspended after the 15th, resumed
    (d(5, 1), "partner", "ticket.open", "05"),
    (d(5, 1), "partner", "contact.phone_followup", "05"),
    (d(5, 5), "partner", "fee.late", "05"),
    (d(5, 15), "partner", "service.suspend", "05"),
    (d(5, 20), "partner", "service.resume", ""),
    # trial: ends on its date
    (d(6, 30), "trial", "service.suspend", ""),
}


@dataclasses.dataclass
class Sim:
    account: AccountState
    invoices: dict[str, InvoiceState]
    taken: set[tuple[str, str, str]]


def _apply(sim: Sim, action: Action) -> None:
    sim.taken.add(action.key)
    if action.action == SUSPEND:
        sim.account = dataclasses.replace(
            sim.account, standing="suspended", standing_reason=action.reason
        )
    elif action.action == "service.resume":
        sim.account = dataclasses.replace(sim.account, standing="good", standing_reason="")
    elif action.action == "account.flag_delinquent":
        sim.account = dataclasses.replace(sim.account, delinquent_year=int(action.period))


def simulate() -> set[tuple[datetime.date, str, str, str]]:
    sims: dict[str, Sim] = {}
    for name in PAYMENTS:
        plan = "nfr" if name == "nfr" else "paid"
        invoices = {
            f"{name}-{m:02d}": InvoiceState(f"{name}-{m:02d}", d(m, 1)) for m in range(1, 13)
        }
        sims[name] = Sim(AccountState(name, plan=plan), invoices, set())
    for name, (ends, _) in TRIALS.items():
        sims[name] = Sim(AccountState(name, plan="trial", trial_ends_on=ends), {}, set())

    seen: set[tuple[datetime.date, str, str, str]] = set()
    day = d(1, 1)
    while day.year == YEAR:
        for name, sim in sims.items():
            # what the billing system tells us during the day (webhooks) ...
            if SECONDARY_ADDED.get(name) == day:
                sim.account = dataclasses.replace(sim.account, has_secondary=True)
            if name in TRIALS and TRIALS[name][1] == day:
                sim.account = dataclasses.replace(sim.account, plan="paid")
            for inv_id, inv in list(sim.invoices.items()):
                month = int(inv_id[-2:])
                pay_on = PAYMENTS.get(name, {}).get(month, d(month, 1))
                if inv.status == "open" and pay_on == day:
                    sim.invoices[inv_id] = dataclasses.replace(inv, status="paid", paid_on=day)
                    for action in reinstatement(sim.account, sim.invoices.values(), day):
                        seen.add((day, name, action.action, action.invoice_id[-2:]))
                        _apply(sim, action)
            # ... and the run that judges the day once it is over
            for action in evaluate(sim.account, sim.invoices.values(), sim.taken, day):
                seen.add((day, name, action.action, action.invoice_id[-2:]))
                _apply(sim, action)
        day += datetime.timedelta(days=1)
    return seen


def test_year_of_dunning_matches_the_policy() -> None:
    got = simulate()
    missing = sorted(EXPECTED - got)
    extra = sorted(got - EXPECTED)
    assert (missing, extra) == ([], [])


def test_each_action_once_per_invoice_even_when_run_twice() -> None:
    account = AccountState("a")
    inv = InvoiceState("i", d(5, 1))
    first = evaluate(account, [inv], set(), d(5, 16))
    # a missed fortnight is caught up in one run: ticket, phone, fee, suspension
    assert sorted(a.action for a in first) == [
        "contact.phone_followup",
        "fee.late",
        "service.suspend",
        "ticket.open",
    ]
    taken = {a.key for a in first}
    suspended = dataclasses.replace(account, standing="suspended", standing_reason=REASON_BILLING)
    assert evaluate(suspended, [inv], taken, d(5, 16)) == []
    assert evaluate(suspended, [inv], taken, d(5, 17)) == []


def test_flag_carries_into_next_year_then_lapses() -> None:
    account = AccountState("a")
    late = [InvoiceState(f"i{m}", d(m, 1), "paid", d(m, 9)) for m in (1, 2, 3)]
    assert is_delinquent(account, late, d(3, 5))
    assert not is_delinquent(account, late, d(3, 4))
    assert is_delinquent(account, late, D(YEAR + 1, 7, 1))
    assert not is_delinquent(account, late, D(YEAR + 2, 1, 1))
    # January next year, unpaid on the 1st: the delinquent rules apply
    jan = InvoiceState("j", D(YEAR + 1, 1, 1))
    acts = evaluate(account, [*late, jan], set(), D(YEAR + 1, 1, 3))
    assert ("j", "service.suspend") in {(a.invoice_id, a.action) for a in acts}


def test_suspended_manually_is_not_reinstated_by_payment() -> None:
    account = AccountState("a", standing="suspended", standing_reason="manual")
    paid = InvoiceState("i", d(5, 1), "paid", d(5, 20))
    assert reinstatement(account, [paid], d(5, 20)) == []
    assert evaluate(account, [paid], set(), d(5, 20)) == []


def test_schedule_from_file_data() -> None:
    lenient = schedule_from_dict(
        {"rules": [{"action": "service.suspend", "offset": 30}], "delinquent_after": 5}
    )
    inv = InvoiceState("i", d(5, 1))
    assert evaluate(AccountState("a"), [inv], set(), d(5, 16), lenient) == []
    acts = evaluate(AccountState("a"), [inv], set(), d(5, 31), lenient)
    assert [a.action for a in acts] == ["service.suspend"]
    assert DEFAULT_SCHEDULE.delinquent_after == 2
