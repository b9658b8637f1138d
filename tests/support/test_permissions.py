"""The permission table of the support desk (SPEC §8): what a caller may ask for by phone."""

from __future__ import annotations

from support.permissions import PERMISSIONS, Needs, permissions


def test_permission_table_is_the_policy() -> None:
    needs = {a.key: a.needs for a in PERMISSIONS}
    assert needs == {
        "public_information": Needs.NOTHING,
        "invoices_pricing": Needs.PIN_AND_GOOD_STANDING,
        "account_changes": Needs.PIN_AND_GOOD_STANDING,
        "open_ticket": Needs.PIN_AND_GOOD_STANDING,
        "new_services": Needs.PIN_AND_GOOD_STANDING,
        "add_contact": Needs.NEVER_BY_PHONE,
        "delete_service": Needs.NEVER_BY_PHONE,
    }

    def allowed(pin: bool, standing: str | None) -> set[str]:
        return {p.key for p in permissions(pin, standing) if p.allowed}

    pin_actions = {"invoices_pricing", "account_changes", "open_ticket", "new_services"}
    assert allowed(True, "good") == {"public_information"} | pin_actions
    assert allowed(False, "good") == {"public_information"}
    assert allowed(False, None) == {"public_information"}
    assert allowed(True, "suspended") == {"public_information"}
    assert allowed(True, "terminated") == {"public_information"}
