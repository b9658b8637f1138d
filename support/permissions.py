"""What the support desk may do for a caller on the phone (SPEC §8), as data.

Each action in :data:`PERMISSIONS` needs nothing (public information), a matching PIN *and*
an account in good standing, or is never done by phone at all, PIN or not.
:func:`permissions` applies the table; nothing else decides.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any


class Needs(enum.Enum):
    """What an action needs before the desk may do it for a caller on the phone."""

    NOTHING = "public"
    PIN_AND_GOOD_STANDING = "pin"
    NEVER_BY_PHONE = "never"


@dataclasses.dataclass(frozen=True)
class Action:
    key: str
    label: str
    needs: Needs


PERMISSIONS: tuple[Action, ...] = (
    Action("public_information", "Public information (status, prices, contacts)", Needs.NOTHING),
    Action("invoices_pricing", "Invoices and pricing of the account", Needs.PIN_AND_GOOD_STANDING),
    Action("account_changes", "Account or service changes", Needs.PIN_AND_GOOD_STANDING),
    Action("open_ticket", "A new ticket on the caller's behalf", Needs.PIN_AND_GOOD_STANDING),
    Action("new_services", "New services and settings", Needs.PIN_AND_GOOD_STANDING),
    Action("add_contact", "Adding a contact to the account", Needs.NEVER_BY_PHONE),
    Action("delete_service", "Deleting a service", Needs.NEVER_BY_PHONE),
)


@dataclasses.dataclass(frozen=True)
class Permission:
    key: str
    label: str
    needs: str  # public | pin | never
    allowed: bool
    why: str

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def permissions(pin_matched: bool, standing: str | None) -> list[Permission]:
    """Apply :data:`PERMISSIONS` to a caller: ``pin_matched`` only for a ``match`` result
    (never for ``locked``), ``standing`` the account's (``None`` when nothing matched)."""
    out = []
    for a in PERMISSIONS:
        if a.needs is Needs.NOTHING:
            allowed, why = True, "public: no PIN needed"
        elif a.needs is Needs.NEVER_BY_PHONE:
            allowed = False
            why = (
                "never by phone, PIN or not: the account owner does it in the portal or via the MSP"
            )
        elif not pin_matched:
            allowed, why = False, "needs a matching PIN"
        elif standing != "good":
            allowed, why = False, f"needs an account in good standing (this one is {standing})"
        else:
            allowed, why = True, "PIN matched and the account is in good standing"
        out.append(Permission(a.key, a.label, a.needs.value, allowed, why))
    return out
